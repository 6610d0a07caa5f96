"""Mutation testing of the protocol core (firmware/mptcp/*.py) against the unit suite.

Why: line coverage says a line ran, not that a test would notice it being wrong. Each
mutant is one small source change (a flipped comparison, an off-by-one constant, a
dropped statement, ...); a good suite fails on it ("killed"). Survivors show where tests
are missing, or the change is equivalent (listed in tests/mutants_equivalent.txt).

The source tree is never written: firmware/ and tests/ are copied to a temporary
directory per worker, one mutation at a time is applied there, the unit suite runs
(CPython pytest, the copy's firmware first on sys.path) and the file is restored.
A mutant is identified by file:line:col:operator (col 1-based).

    python -m mptcp_tools.mutants --files assembler.py,ringbuf.py
    python -m mptcp_tools.mutants --files tcp.py --sample 60 --seed 1 -j 2
"""
import argparse
import ast
import concurrent.futures
import io
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tokenize

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PKG = os.path.join("firmware", "mptcp")
DEFAULT_TESTS = os.path.join("tests", "unit")
DEFAULT_EQUIV = os.path.join("tests", "mutants_equivalent.txt")
DEFAULT_JSON = os.path.join("results", "mutants.json")
TIMEOUT_FACTOR = 10     # a run may take 10x its unmutated time + 5 s (at most --timeout)
TIMEOUT_SLACK = 5.0
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")

OPERATORS = {
    "cmp_boundary": "< <-> <=, > <-> >=",
    "cmp_negate": "== <-> !=, is <-> is not, in <-> not in",
    "arith": "+ <-> - (also += <-> -=)",
    "const": "integer constant n -> n+1, 0 <-> 1",
    "negate_cond": "if/elif/ternary condition c -> not (c)",
    "and_or": "and <-> or",
    "drop_stmt": "assignment, augmented assignment or call statement -> pass",
    "return_bool": "return True <-> return False",
}

_CMP_SWAP = {
    ast.Lt: ("cmp_boundary", b"<="), ast.LtE: ("cmp_boundary", b"<"),
    ast.Gt: ("cmp_boundary", b">="), ast.GtE: ("cmp_boundary", b">"),
    ast.Eq: ("cmp_negate", b"!="), ast.NotEq: ("cmp_negate", b"=="),
    ast.Is: ("cmp_negate", b"is not"), ast.IsNot: ("cmp_negate", b"is"),
    ast.In: ("cmp_negate", b"not in"), ast.NotIn: ("cmp_negate", b"in"),
}
_CMP_TOKEN = re.compile(rb"not\s+in\b|is\s+not\b|in\b|is\b|<=|>=|==|!=|<|>")
_ADD_TOKEN = re.compile(rb"\+=?|-=?")
_BOOL_TOKEN = re.compile(rb"and\b|or\b")


class Mutant:
    """One source change: bytes [start, end) of the file replaced by repl."""

    def __init__(self, file, line, col, op, start, end, repl, original, mutated):
        self.file, self.line, self.col, self.op = file, line, col, op
        self.start, self.end, self.repl = start, end, repl
        self.original, self.mutated = original, mutated

    @property
    def id(self):
        return "%s:%d:%d:%s" % (self.file, self.line, self.col, self.op)

    @property
    def key(self):
        """Stable across edits elsewhere in the file: no line numbers."""
        return (self.file, self.op, _norm(self.original), _norm(self.mutated))

    def diff(self):
        return "%s  ->  %s" % (_norm(self.original), _norm(self.mutated))

    def apply(self, src):
        return src[:self.start] + self.repl + src[self.end:]

    def to_dict(self):
        return {"id": self.id, "file": self.file, "line": self.line, "col": self.col,
                "op": self.op, "original": _norm(self.original), "mutated": _norm(self.mutated)}


def _norm(text):
    """Code only: comments dropped, lines stripped and joined by one space (a multi-line
    statement as one line), so keys survive comment edits."""
    lines = [s.strip() for s in text.splitlines()]
    cuts = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline):
            if tok.type == tokenize.COMMENT:
                cuts.setdefault(tok.start[0] - 1, tok.start[1])
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass                         # a fragment of a longer statement: comments seen so far
    lines = [ln[:cuts[i]].rstrip() if i in cuts else ln for i, ln in enumerate(lines)]
    return " ".join(ln for ln in lines if ln)


class _Finder(ast.NodeVisitor):
    """Walks one module and records every mutation site."""

    def __init__(self, name, src):
        self.name = name
        self.src = src
        self.starts = [0]
        for i, c in enumerate(src):
            if c == 10:
                self.starts.append(i + 1)
        self.out = []

    # positions: AST columns are UTF-8 byte offsets, so the source is kept as bytes
    def off(self, line, col):
        return self.starts[line - 1] + col

    def node_span(self, node):
        return (self.off(node.lineno, node.col_offset),
                self.off(node.end_lineno, node.end_col_offset))

    def line_of(self, pos):
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= pos:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    def lines_text(self, src, a, b):
        """Full source lines covering bytes [a, b] of src."""
        s = src.rfind(b"\n", 0, a) + 1
        e = src.find(b"\n", max(a, b))
        return src[s:] if e < 0 else src[s:e]

    def add(self, op, start, end, repl):
        line = self.line_of(start)
        col = len(self.src[self.starts[line - 1]:start].decode("utf-8", "replace")) + 1
        mutated_src = self.src[:start] + repl + self.src[end:]
        orig = self.lines_text(self.src, start, max(start, end - 1))
        mut = self.lines_text(mutated_src, start, start + max(len(repl) - 1, 0))
        self.out.append(Mutant(self.name, line, col, op, start, end, repl,
                               orig.decode("utf-8", "replace"), mut.decode("utf-8", "replace")))

    def token(self, a, b, pattern):
        """(start, end) of the operator token in the gap [a, b) between two operands."""
        src = self.src
        i = a
        while i < b:
            c = src[i]
            if c in b" \t\r\n()\\":
                i += 1
            elif c == 0x23:                      # '#': a comment inside parentheses
                i = src.index(b"\n", i)
            else:
                m = pattern.match(src, i)
                if m is None or m.end() > b:
                    return None
                return m.start(), m.end()
        return None

    # -- operators ----------------------------------------------------------------------
    def visit_Expr(self, node):
        if isinstance(node.value, ast.Call):
            self.drop(node)
        self.generic_visit(node)     # a docstring (Expr of a str) has no mutation sites

    def visit_Assign(self, node):
        self.drop(node)
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.drop(node)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self.drop(node)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            t = self.token(self.node_span(node.target)[1], self.node_span(node.value)[0],
                           _ADD_TOKEN)
            if t:
                self.add("arith", t[0], t[1], b"-=" if isinstance(node.op, ast.Add) else b"+=")
        self.generic_visit(node)

    def drop(self, node):
        a, b = self.node_span(node)
        self.add("drop_stmt", a, b, b"pass")

    def visit_Compare(self, node):
        left = node.left
        for op, right in zip(node.ops, node.comparators):
            kind, repl = _CMP_SWAP[type(op)]
            t = self.token(self.node_span(left)[1], self.node_span(right)[0], _CMP_TOKEN)
            if t:
                self.add(kind, t[0], t[1], repl)
            left = right
        self.generic_visit(node)

    def visit_BinOp(self, node):
        if isinstance(node.op, (ast.Add, ast.Sub)) and not (_is_text(node.left) or
                                                            _is_text(node.right)):
            t = self.token(self.node_span(node.left)[1], self.node_span(node.right)[0],
                           _ADD_TOKEN)
            if t:
                self.add("arith", t[0], t[1], b"-" if isinstance(node.op, ast.Add) else b"+")
        self.generic_visit(node)

    def visit_BoolOp(self, node):
        repl = b"or" if isinstance(node.op, ast.And) else b"and"
        for left, right in zip(node.values, node.values[1:]):
            t = self.token(self.node_span(left)[1], self.node_span(right)[0], _BOOL_TOKEN)
            if t:
                self.add("and_or", t[0], t[1], repl)
        self.generic_visit(node)

    def visit_Constant(self, node):
        v = node.value
        if isinstance(v, int) and not isinstance(v, bool):
            a, b = self.node_span(node)
            text = self.src[a:b].lower()
            new = 1 if v == 0 else 0 if v == 1 else v + 1
            if text.startswith(b"0x"):
                repl = b"0x%X" % new
            elif text.startswith(b"0b"):
                repl = ("0b" + bin(new)[2:]).encode()
            else:
                repl = b"%d" % new
            self.add("const", a, b, repl)

    def visit_If(self, node):
        self.negate(node.test)
        self.generic_visit(node)

    def visit_IfExp(self, node):
        self.negate(node.test)
        self.generic_visit(node)

    def negate(self, test):
        a, b = self.node_span(test)
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            ia, ib = self.node_span(test.operand)
            self.add("negate_cond", a, b, b"(" + self.src[ia:ib] + b")")
        else:
            self.add("negate_cond", a, b, b"not (" + self.src[a:b] + b")")

    def visit_Return(self, node):
        v = node.value
        if isinstance(v, ast.Constant) and isinstance(v.value, bool):
            a, b = self.node_span(v)
            self.add("return_bool", a, b, b"False" if v.value else b"True")
        self.generic_visit(node)


def _is_text(node):
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and
                                               isinstance(node.value, (str, bytes)))


def find_mutants(name, src):
    """All mutants of one module's source (bytes), in source order."""
    f = _Finder(name, src)
    f.visit(ast.parse(src, filename=name))
    f.out.sort(key=lambda m: (m.start, m.op, m.end))
    return f.out


def valid(m, src):
    """The mutated module still compiles (guards the byte-level rewrite)."""
    try:
        compile(m.apply(src), m.file, "exec", dont_inherit=True)
        return True
    except SyntaxError:
        return False


def sample(mutants, n, seed, name):
    """n mutants of one file, the same ones for the same (seed, file, source)."""
    if not n or n >= len(mutants):
        return list(mutants)
    rng = random.Random("%s:%s" % (seed, name))
    picked = sorted(rng.sample(range(len(mutants)), n))
    return [mutants[i] for i in picked]


# -- the equivalent list -----------------------------------------------------------------
def load_equivalents(path):
    """{key: reason} from the equivalent list; format documented in the file itself.

    A record is four lines:  FILE OPERATOR / "- " original line / "+ " mutated line /
    "why: " reason. Blank lines and lines starting with '#' are ignored.
    """
    out = {}
    if not path or not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        lines = [ln.rstrip("\n") for ln in f]
    recs = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if len(recs) % 4:
        raise SystemExit("%s: records must be 4 lines (FILE OP / - orig / + mutated / why:)"
                         % path)
    for i in range(0, len(recs), 4):
        head, orig, mut, why = recs[i:i + 4]
        parts = head.split()
        if (len(parts) != 2 or parts[1] not in OPERATORS or not orig.startswith("- ")
                or not mut.startswith("+ ") or not why.startswith("why:")):
            raise SystemExit("%s: malformed record at %r" % (path, head))
        out[(parts[0], parts[1], _norm(orig[2:]), _norm(mut[2:]))] = why[4:].strip()
    return out


def equivalent_record(m):
    """The text to paste into the equivalent list for survivor m."""
    return "%s %s\n- %s\n+ %s\nwhy: ...\n" % (m.file, m.op, _norm(m.original), _norm(m.mutated))


# -- running -----------------------------------------------------------------------------
def make_copy(root, dest):
    """firmware/, tests/ and boards/ of root under dest, plus a pytest.ini pinning rootdir
    there."""
    for d in ("firmware", "tests", "boards"):     # (boards: the board-config tests)
        if d == "boards" and not os.path.isdir(os.path.join(root, d)):
            continue
        shutil.copytree(os.path.join(root, d), os.path.join(dest, d), ignore=COPY_IGNORE)
    with open(os.path.join(dest, "pytest.ini"), "w") as f:
        f.write("[pytest]\npythonpath = firmware tests\n")


def test_phases(tdir, stem):
    """Test files in phases: first the tests named after module `stem` (a quick kill),
    then the rest, those importing the module first (-x stops at the first failure)."""
    names = sorted(n for n in os.listdir(tdir) if n.startswith("test_") and n.endswith(".py"))
    pat = re.compile(r"mptcp\.%s\b|from mptcp import .*\b%s\b" % (stem, stem))

    def rank(n):
        base = n[5:-3]
        if stem and (base == stem or base.startswith(stem + "_")):
            return 0
        with open(os.path.join(tdir, n), encoding="utf-8") as f:
            return 1 if stem and pat.search(f.read()) else 2
    ranked = sorted(names, key=lambda n: (rank(n), n))
    first = [n for n in ranked if rank(n) == 0]
    rest = [n for n in ranked if rank(n) != 0]
    return [ph for ph in (first, rest) if ph]


# The pytest processes running now (each in its own process group), killed when the tool
# is interrupted. Workers are threads: each waits on one child process, so nothing is
# forked from this process (a fork of a process with threads can inherit a held lock and
# hang, as it did inside the host test suite).
_children = set()
_children_lock = threading.Lock()
_stopping = threading.Event()


def kill_children():
    """Kill every running pytest and let no new one start."""
    with _children_lock:
        _stopping.set()
        for p in list(_children):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass            # it ended by itself meanwhile


def run_suite(copy_root, tests_rel, files, timeout):
    """(status, seconds, output tail) of one pytest run in copy_root."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MICROPYPATH", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(copy_root, "firmware"),
                                         os.path.join(copy_root, "tests")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"     # no stale .pyc when a mutant keeps the size
    env["PYTHONHASHSEED"] = "0"
    argv = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    argv += [os.path.join(tests_rel, n) for n in files]
    t0 = time.monotonic()
    with _children_lock:
        if _stopping.is_set():
            return "error", 0.0, "interrupted"
        p = subprocess.Popen(argv, cwd=copy_root, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
        _children.add(p)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return "timeout", time.monotonic() - t0, ""
    finally:
        with _children_lock:
            _children.discard(p)
    dt = time.monotonic() - t0
    tail = "\n".join(out.decode("utf-8", "replace").splitlines()[-25:])
    # pytest: 0 all passed, 1 tests failed, 2 interrupted (collection/import error),
    # 3 internal error; 4 usage error and 5 no tests are the runner's fault, except a
    # conftest that no longer imports (exit 4 too): the same suite passed unmutated, so
    # the mutant broke the import (e.g. a module-level constant dropped)
    if p.returncode == 0:
        return "survived", dt, tail
    if p.returncode in (1, 2, 3) or (p.returncode == 4
                                      and b"ImportError while loading conftest" in out):
        return "killed", dt, tail
    return "error", dt, tail


def limit(seconds, ceiling):
    """Time limit of a run whose unmutated time is `seconds`: generous, at most ceiling."""
    return min(ceiling, TIMEOUT_FACTOR * seconds + TIMEOUT_SLACK)


def _run_one(job, slots):
    """Take a free copy of the tree, apply one mutant there, run the phases, restore the
    file and give the copy back."""
    slot = slots.get()
    try:
        return _run_in(slot, job)
    finally:
        slots.put(slot)


def _run_in(slot, job):
    m_dict, start, end, repl, tests_rel, phases = job
    path = os.path.join(slot, PKG, m_dict["file"])
    with open(path, "rb") as f:
        original = f.read()
    try:
        with open(path, "wb") as f:
            f.write(original[:start] + repl + original[end:])
        dt = 0.0
        for files, timeout in phases:
            try:
                status, t, tail = run_suite(slot, tests_rel, files, timeout)
            except OSError as e:             # e.g. the venv being rebuilt under us
                status, t, tail = "error", 0.0, "cannot run pytest: %r" % (e,)
            dt += t
            if status != "survived":
                break
    finally:
        with open(path, "wb") as f:
            f.write(original)
    return m_dict["id"], status, dt, tail if status == "error" else ""


def rates(rows):
    """Per-file counts and kill rates (with and without the known equivalents)."""
    per = {}
    for r in rows:
        s = per.setdefault(r["file"], {"total": 0, "killed": 0, "timeout": 0, "survived": 0,
                                       "equivalent": 0, "error": 0})
        s["total"] += 1
        s[r["status"]] += 1
        if r["status"] == "survived" and r.get("equivalent"):
            s["equivalent"] += 1
    for s in per.values():
        dead = s["killed"] + s["timeout"]
        s["kill_rate"] = round(100.0 * dead / s["total"], 1) if s["total"] else None
        rest = s["total"] - s["equivalent"]
        s["kill_rate_excl_equivalent"] = round(100.0 * dead / rest, 1) if rest else None
    return per


def _pct(v):
    return "-" if v is None else "%.1f%%" % v


def report(rows, per, out):
    w = out.write
    w("\n%-16s %7s %7s %8s %6s %6s %7s %9s\n" % ("file", "killed", "timeout", "survived",
                                                 "equiv", "total", "rate", "rate-eq"))
    tot = {"total": 0, "killed": 0, "timeout": 0, "survived": 0, "equivalent": 0}
    for name in sorted(per):
        s = per[name]
        for k in tot:
            tot[k] += s[k]
        w("%-16s %7d %7d %8d %6d %6d %7s %9s\n" % (
            name, s["killed"], s["timeout"], s["survived"], s["equivalent"], s["total"],
            _pct(s["kill_rate"]), _pct(s["kill_rate_excl_equivalent"])))
    if len(per) > 1 and tot["total"]:
        dead = tot["killed"] + tot["timeout"]
        rest = tot["total"] - tot["equivalent"]
        w("%-16s %7d %7d %8d %6d %6d %7s %9s\n" % (
            "all", tot["killed"], tot["timeout"], tot["survived"], tot["equivalent"],
            tot["total"], _pct(100.0 * dead / tot["total"]),
            _pct(100.0 * dead / rest if rest else None)))
    surv = [r for r in rows if r["status"] == "survived"]
    if surv:
        w("\nsurvivors (file:line:col:operator  original  ->  mutated):\n")
        for r in surv:
            mark = "  [equivalent: %s]" % r["equivalent"] if r.get("equivalent") else ""
            w("  %s  %s  ->  %s%s\n" % (r["id"], r["original"], r["mutated"], mark))
    errs = [r for r in rows if r["status"] == "error"]
    for r in errs:
        w("\nERROR (runner, not the mutant) %s:\n%s\n" % (r["id"], r.get("output", "")))


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m mptcp_tools.mutants",
        description="Mutation testing of firmware/mptcp/*.py against the unit suite. "
                    "The source tree is never modified: each worker mutates a private copy.",
        epilog="operators: " + "; ".join("%s (%s)" % kv for kv in OPERATORS.items()),
    )
    p.add_argument("--files", default="",
                   help="comma-separated modules of firmware/mptcp (default: all but _*.py)")
    p.add_argument("--tests", default=DEFAULT_TESTS,
                   help="test directory, relative to the root (default %(default)s)")
    p.add_argument("--sample", type=int, default=0, metavar="N",
                   help="N mutants per file, chosen by --seed (default 0 = all)")
    p.add_argument("--seed", default="1", help="sampling seed (default %(default)s)")
    p.add_argument("--ops", default="", help="comma-separated operators (default: all)")
    p.add_argument("--id", action="append", default=[], metavar="FILE:LINE:COL:OP",
                   help="run only this mutant (repeatable)")
    p.add_argument("-j", "--jobs", type=int, default=2, help="parallel workers (default 2)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="ceiling in seconds for one test run (each run may take %dx its "
                        "unmutated time + %.0f s, at most this); a timeout counts as killed "
                        "(default 60)" % (TIMEOUT_FACTOR, TIMEOUT_SLACK))
    p.add_argument("--equivalents", default=DEFAULT_EQUIV,
                   help="known equivalent survivors (default %(default)s)")
    p.add_argument("--json", default=DEFAULT_JSON, help="JSON output (default %(default)s)")
    p.add_argument("--root", default=ROOT, help="project root (default: this checkout)")
    p.add_argument("--list", action="store_true", help="list the mutants, do not run")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-mutant progress lines")
    return p.parse_args(argv)


def select(args):
    """(mutants, sources) for the chosen files, operators, sample and ids."""
    pkg = os.path.join(args.root, PKG)
    if args.files:
        names = [n.strip() for n in args.files.split(",") if n.strip()]
    else:
        names = sorted(n for n in os.listdir(pkg) if n.endswith(".py") and not n.startswith("_"))
    ops = [o.strip() for o in args.ops.split(",") if o.strip()] or list(OPERATORS)
    for o in ops:
        if o not in OPERATORS:
            raise SystemExit("unknown operator %r (known: %s)" % (o, ", ".join(OPERATORS)))
    chosen, sources = [], {}
    for name in names:
        path = os.path.join(pkg, name)
        if not os.path.isfile(path):
            raise SystemExit("no such module: %s" % path)
        with open(path, "rb") as f:
            src = f.read()
        sources[name] = src
        ms = [m for m in find_mutants(name, src) if m.op in ops]
        ms = sample(ms, args.sample, args.seed, name)
        if args.id:
            ms = [m for m in ms if m.id in args.id]
        bad = [m for m in ms if not valid(m, src)]
        if bad:
            raise SystemExit("internal error: mutant does not compile: " + bad[0].id)
        chosen.extend(ms)
    if args.id:
        missing = set(args.id) - {m.id for m in chosen}
        if missing:
            raise SystemExit("no such mutant: " + ", ".join(sorted(missing)))
    return chosen, sources


def main(argv=None, out=sys.stdout):
    args = parse_args(argv)
    args.root = os.path.abspath(args.root)
    tests_abs = os.path.join(args.root, args.tests)
    tests_rel = os.path.relpath(tests_abs, args.root)
    if tests_rel.startswith("..") or not tests_rel.startswith("tests"):
        raise SystemExit("--tests must be a directory under %s/tests" % args.root)
    if not os.path.isdir(tests_abs):
        raise SystemExit("no such test directory: " + tests_abs)
    mutants, _ = select(args)
    if args.list:
        for m in mutants:
            out.write("%s  %s\n" % (m.id, m.diff()))
        out.write("%d mutants\n" % len(mutants))
        return 0
    equiv = load_equivalents(os.path.join(args.root, args.equivalents))
    jobs = max(1, min(args.jobs, len(mutants) or 1))
    t_start = time.monotonic()
    _stopping.clear()
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        slots = []
        for i in range(jobs):
            d = os.path.join(tmp, "w%d" % i)
            make_copy(args.root, d)
            slots.append(d)
        # the unmutated suite must pass, or every mutant would look killed
        phases = test_phases(os.path.join(slots[0], tests_rel), "")
        if not phases:
            raise SystemExit("no test_*.py files in " + tests_abs)
        status, base_s, tail = run_suite(slots[0], tests_rel, phases[0], args.timeout)
        if status != "survived":
            out.write("ERROR: the unit suite fails WITHOUT any mutation (%s in %s); fix it "
                      "first.\n%s\n" % (status, tests_rel, tail))
            return 2
        # per file: its own tests first (timed unmutated for their limit), then the rest
        plan = {}
        for m in mutants:
            if m.file in plan:
                continue
            ph = test_phases(os.path.join(slots[0], tests_rel), m.file[:-3])
            runs = []
            for files in ph:
                t = base_s
                if len(ph) > 1 and files is ph[0]:
                    status, t, tail = run_suite(slots[0], tests_rel, files, args.timeout)
                    if status != "survived":
                        out.write("ERROR: %s fails WITHOUT any mutation (%s).\n%s\n"
                                  % (", ".join(files), status, tail))
                        return 2
                runs.append((files, limit(t, args.timeout)))
            plan[m.file] = runs
        out.write("baseline: %s passes unmutated in %.1f s; %d mutants, %d workers, "
                  "time limit per run %.0f s (own tests first: %s)\n"
                  % (tests_rel, base_s, len(mutants), jobs, limit(base_s, args.timeout),
                     ", ".join("%s %.0f s" % (f, p[0][1]) for f, p in sorted(plan.items())
                               if len(p) > 1) or "none"))
        out.flush()
        rows = {m.id: dict(m.to_dict(), status=None, seconds=None) for m in mutants}
        free = queue.Queue()
        for d in slots:
            free.put(d)
        work = [(m.to_dict(), m.start, m.end, m.repl, tests_rel, plan[m.file])
                for m in mutants]
        pool = concurrent.futures.ThreadPoolExecutor(jobs, thread_name_prefix="mutant")
        try:
            futures = [pool.submit(_run_one, job, free) for job in work]
            done = 0
            for fut in concurrent.futures.as_completed(futures):
                mid, status, dt, tail = fut.result()
                done += 1
                row = rows[mid]
                row["status"], row["seconds"] = status, round(dt, 2)
                if tail:
                    row["output"] = tail
                if not args.quiet:
                    out.write("%4d/%d %-8s %s (%.1f s)\n" % (done, len(mutants), status, mid, dt))
                    out.flush()
        finally:
            # on Ctrl-C / SIGTERM: drop what has not started and kill what runs (the
            # workers then see their child gone and return); the copies are removed after
            pool.shutdown(wait=False, cancel_futures=True)
            kill_children()
            pool.shutdown(wait=True)
    elapsed = time.monotonic() - t_start
    keyed = {m.id: m.key for m in mutants}
    for mid, row in rows.items():
        if row["status"] == "survived" and keyed[mid] in equiv:
            row["equivalent"] = equiv[keyed[mid]]
    ordered = [rows[m.id] for m in mutants]
    per = rates(ordered)
    report(ordered, per, out)
    out.write("\n%d mutants in %.0f s (baseline %.1f s, %d workers)\n"
              % (len(mutants), elapsed, base_s, jobs))
    if args.json:
        jpath = os.path.join(args.root, args.json)
        os.makedirs(os.path.dirname(jpath) or ".", exist_ok=True)
        with open(jpath, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items()},
                       "seconds": round(elapsed, 1), "baseline_seconds": round(base_s, 2),
                       "files": per, "mutants": ordered}, f, indent=1)
        out.write("JSON: %s\n" % jpath)
    return 1 if any(r["status"] == "error" for r in ordered) else 0


if __name__ == "__main__":
    # SIGTERM ends the run like Ctrl-C: main's finally kills the running pytest processes
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
