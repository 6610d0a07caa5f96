// Run the unit suite on a 32-bit MicroPython: the WebAssembly port under node.
//
// Usage: node tests/wasm_run.mjs [--bundle DIR] [--heap BYTES] [TESTDIR [FILTER]]
//        node tests/wasm_run.mjs --script FILE [--bundle DIR] [-- ARGS...]
//
// The port (npm @micropython/micropython-webassembly-pyscript, installed by
// `make setup` into .wasm/) has 4-byte words and 31-bit small ints, like the
// RP2040. It has no disk: firmware/ (or, with --bundle, a compiled .mpy bundle
// such as build/unix_lab) and tests/ are copied into its in-memory filesystem
// (emscripten's FS, `mp.FS`) under /repo, sys.path is set, and tests/mpy_run.py
// runs there. The exit code is mpy_run's: non-zero if any test failed.
// A bundle's bytecode .mpy files load here (mpy v6, 31-bit small ints); its viper
// modules are compiled for one arch and are rejected, so the pure-Python loops run.
// If a bundle does not load at all, the runner says so and runs from source.
// --script runs another file instead (e.g. firmware/mptcp_apps/coreprof.py,
// tests/alloc_sites.py, or any file of yours), with firmware/ and tests/ importable.
import fs from "node:fs";
import path from "node:path";
import url from "node:url";

const ROOT = path.resolve(path.dirname(url.fileURLToPath(import.meta.url)), "..");
const PKG = "@micropython/micropython-webassembly-pyscript";
const MODULE = path.join(ROOT, ".wasm", "node_modules", PKG, "micropython.mjs");
const VFS_ROOT = "/repo";

function usage(msg) {
  if (msg) console.error("wasm_run: " + msg);
  console.error("usage: node tests/wasm_run.mjs [--bundle DIR] [--heap BYTES] [TESTDIR [FILTER]]");
  console.error("       node tests/wasm_run.mjs --script FILE [--bundle DIR] [--heap BYTES] [-- ARGS...]");
  process.exit(2);
}

function parseArgs(argv) {
  const a = { bundle: null, heap: 16 * 1024 * 1024, pystack: 64 * 1024, script: null, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const s = argv[i];
    if (s === "--bundle") a.bundle = argv[++i];
    else if (s === "--heap") a.heap = parseInt(argv[++i], 10);
    else if (s === "--script") a.script = argv[++i];
    else if (s === "--") { a.rest.push(...argv.slice(i + 1)); break; }
    else if (s.startsWith("--")) usage("unknown option " + s);
    else a.rest.push(s);
  }
  if (!(a.heap > 0)) usage("bad --heap");
  return a;
}

// Copy a host directory tree into the port's filesystem (only .py / .mpy files).
function copyTree(FS, src, dst) {
  let n = 0;
  FS.mkdirTree(dst);
  for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, ent.name);
    const d = dst + "/" + ent.name;
    if (ent.isDirectory()) {
      if (ent.name === "__pycache__") continue;
      n += copyTree(FS, s, d);
    } else if (ent.isFile() && (ent.name.endsWith(".py") || ent.name.endsWith(".mpy"))) {
      FS.writeFile(d, fs.readFileSync(s));
      n++;
    }
  }
  return n;
}

function pyStr(s) {
  return JSON.stringify(s); // a JSON string literal is a valid Python str literal here (ASCII paths)
}

// the port's PythonError carries the exception type apart from the traceback text
function pyError(e) {
  return (e && e.type ? e.type + "\n" : "") + (e && e.message ? e.message : String(e));
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(MODULE)) {
    console.error("wasm_run: " + MODULE + " is missing; run `make setup` (npm install into .wasm/)");
    process.exit(2);
  }
  const { loadMicroPython } = await import(url.pathToFileURL(MODULE).href);
  const out = (line) => process.stdout.write(line + "\n");
  const mp = await loadMicroPython({ heapsize: a.heap, pystack: a.pystack, stdout: out, stderr: out });

  // firmware/ (source) always: scripts run from there; a bundle goes beside it and,
  // if the port loads its .mpy files, is what the tests import.
  const nFw = copyTree(mp.FS, path.join(ROOT, "firmware"), VFS_ROOT + "/firmware");
  const nT = copyTree(mp.FS, path.join(ROOT, "tests"), VFS_ROOT + "/tests");
  // a Python error in the runner's own code: its traceback, exit 1 (not node's dump of the module)
  const run = (code) => {
    try {
      return mp.runPython(code);
    } catch (e) {
      out("wasm_run: Python error in the runner: " + pyError(e));
      process.exit(1);
    }
  };
  run(`import os\nos.chdir(${pyStr(VFS_ROOT)})\n`);
  let fwPath = "firmware";
  let mode = "source firmware/";
  if (a.bundle) {
    const bdir = path.resolve(a.bundle);
    if (!fs.existsSync(bdir)) usage("no bundle " + bdir + " (run `make build`)");
    const nB = copyTree(mp.FS, bdir, VFS_ROOT + "/bundle");
    // A bytecode-only .mpy (no native code) loads if its version and small-int width fit.
    run(`
import sys
sys.path[:] = ["bundle"]
try:
    import mptcp.compat
    _wasm_mpy = "ok" if mptcp.compat.__file__.endswith(".mpy") else "not an .mpy: " + mptcp.compat.__file__
except (ImportError, ValueError) as e:
    _wasm_mpy = repr(e)
for _m in [m for m in sys.modules if m == "mptcp" or m.startswith("mptcp.")]:
    del sys.modules[_m]
`);
    const probe = mp.globals.get("_wasm_mpy");
    const rel = path.relative(ROOT, bdir);
    if (probe === "ok") {
      fwPath = "bundle";
      mode = `bundle ${rel} (${nB} .mpy files)`;
    } else {
      out(`wasm_run: the port cannot load ${rel}/*.mpy (${probe}): running from source only`);
      mode = `source firmware/ (bundle ${rel} not loadable)`;
    }
  }

  let script, args;
  if (a.script) {
    const host = path.resolve(a.script);
    if (!fs.existsSync(host)) usage("no script " + host);
    script = path.relative(ROOT, host);
    if (!script.startsWith("firmware/") && !script.startsWith("tests/")) {
      // a file from elsewhere: copied in beside the repo's tree
      script = "_script/" + path.basename(host);
      mp.FS.mkdirTree(VFS_ROOT + "/_script");
      mp.FS.writeFile(VFS_ROOT + "/" + script, fs.readFileSync(host));
    }
    args = a.rest;
  } else {
    script = "tests/mpy_run.py";
    args = a.rest.length ? a.rest : ["tests/unit"];
  }
  out(`wasm_run: MicroPython WebAssembly (${PKG}), ${mode}, ${nFw} firmware + ${nT} test files, ` +
      `heap ${a.heap} B; ${script} ${args.join(" ")}`);
  // which implementation each hot loop chose (an arch-specific viper .mpy cannot load here)
  run(`
import sys
sys.path[:] = [${pyStr(fwPath)}]
from mptcp import checksum, ringbuf
from mptcp_net import hdlc, ppp_auth
try:
    import mptcp._csum_viper
    _v = "loads"
except Exception as e:
    _v = repr(e)
print("wasm_run: checksum %s, ringbuf copy %s, hdlc %s, CHAP md5 %s; viper module: %s; from %s" % (
    checksum.IMPL, ringbuf.IMPL, hdlc.IMPL, getattr(ppp_auth, "MD5_IMPL", "? (stale bundle: make build)"),
    _v, checksum.__file__))
`);

  // SystemExit ends mpy_run; catch it here so that its code becomes ours.
  const argv = [script, ...args].map(pyStr).join(", ");
  let rc;
  try {
    mp.runPython(`
import sys
sys.path[:] = ["", ${pyStr(fwPath)}, "tests", ".frozen", "/lib"]
sys.argv[:] = [${argv}]
_wasm_rc = 0
try:
    with open(${pyStr(script)}) as _f:
        _src = _f.read()
    exec(compile(_src, ${pyStr(script)}, "exec"), {"__name__": "__main__"})
except SystemExit as _e:
    _c = _e.args[0] if _e.args else 0
    _wasm_rc = _c if isinstance(_c, int) else (0 if _c is None else 1)
`);
    rc = mp.globals.get("_wasm_rc");
  } catch (e) {
    out("wasm_run: uncaught Python exception: " + pyError(e));
    rc = 1;
  }
  process.exit(typeof rc === "number" ? rc : 1);
}

await main();
