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
// --script runs another file instead (e.g. firmware/apps/coreprof.py).
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

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(MODULE)) {
    console.error("wasm_run: " + MODULE + " is missing; run `make setup` (npm install into .wasm/)");
    process.exit(2);
  }
  const { loadMicroPython } = await import(url.pathToFileURL(MODULE).href);
  const out = (line) => process.stdout.write(line + "\n");
  const mp = await loadMicroPython({ heapsize: a.heap, pystack: a.pystack, stdout: out, stderr: out });

  // firmware: source, or a compiled bundle in its place
  let fwDir = path.join(ROOT, "firmware");
  if (a.bundle) {
    fwDir = path.resolve(a.bundle);
    if (!fs.existsSync(fwDir)) usage("no bundle " + fwDir + " (run `make build`)");
  }
  const nFw = copyTree(mp.FS, fwDir, VFS_ROOT + "/firmware");
  const nT = copyTree(mp.FS, path.join(ROOT, "tests"), VFS_ROOT + "/tests");

  let script, args;
  if (a.script) {
    script = path.relative(ROOT, path.resolve(a.script));
    if (!script.startsWith("firmware/") && !script.startsWith("tests/")) {
      usage("--script must be under firmware/ or tests/");
    }
    if (a.bundle && script.startsWith("firmware/")) {
      // the bundle holds .mpy only: run the source file against the bundle's modules
      mp.FS.writeFile(VFS_ROOT + "/" + script, fs.readFileSync(path.join(ROOT, script)));
    }
    args = a.rest;
  } else {
    script = "tests/mpy_run.py";
    args = a.rest.length ? a.rest : ["tests/unit"];
  }
  const mode = a.bundle ? "bundle " + path.relative(ROOT, fwDir) : "source firmware/";
  out(`wasm_run: MicroPython WebAssembly (${PKG}), ${mode}, ${nFw} firmware + ${nT} test files, ` +
      `heap ${a.heap} B; ${script} ${args.join(" ")}`);

  // SystemExit ends mpy_run; catch it here so that its code becomes ours.
  const argv = [script, ...args].map(pyStr).join(", ");
  let rc;
  try {
    mp.runPython(`
import sys, os
os.chdir(${pyStr(VFS_ROOT)})
sys.path[:] = ["", "firmware", "tests", ".frozen", "/lib"]
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
    out("wasm_run: uncaught Python exception:\n" + (e && e.message ? e.message : String(e)));
    rc = 1;
  }
  process.exit(typeof rc === "number" ? rc : 1);
}

await main();
