"""The mutation runner (mptcp_tools.mutants): operators, isolation, verdicts, equivalent list.

Why: a runner that silently applies nothing, mutates the real tree, or miscounts would
give a kill rate that means nothing.
"""
import ast
import io
import json
import os

import pytest

from mptcp_tools import mutants as M

SAMPLE = b'''"""Module docstring: 1 < 2 and 3 + 4 are text, not code."""

LIMIT = 7


def clamp(x, lo, hi):
    """Docstring: if x < lo."""
    if x < lo:
        return lo
    if x >= hi:
        return hi
    return x


def inc(a, b):
    c = a + b  # comment
    c -= 1
    return c


def check(a, b):
    if not a:
        return a == b or a != b
    return True


def both(a, b):
    return a and b if a is not None else b


log = []
log.append(LIMIT)
'''


def diffs(src=SAMPLE):
    return {(m.op, m.diff()) for m in M.find_mutants("sample.py", src)}


@pytest.mark.parametrize("op, diff", [
    ("cmp_boundary", "if x < lo:  ->  if x <= lo:"),
    ("cmp_boundary", "if x >= hi:  ->  if x > hi:"),
    ("cmp_negate", "return a == b or a != b  ->  return a != b or a != b"),
    ("cmp_negate", "return a == b or a != b  ->  return a == b or a == b"),
    ("cmp_negate", "return a and b if a is not None else b  ->  "
                   "return a and b if a is None else b"),
    ("arith", "c = a + b  ->  c = a - b"),
    ("arith", "c -= 1  ->  c += 1"),
    ("const", "c -= 1  ->  c -= 0"),
    ("const", "LIMIT = 7  ->  LIMIT = 8"),
    ("negate_cond", "if x < lo:  ->  if not (x < lo):"),
    ("negate_cond", "if not a:  ->  if (a):"),
    ("negate_cond", "return a and b if a is not None else b  ->  "
                    "return a and b if not (a is not None) else b"),
    ("and_or", "return a and b if a is not None else b  ->  "
               "return a or b if a is not None else b"),
    ("and_or", "return a == b or a != b  ->  return a == b and a != b"),
    ("drop_stmt", "c = a + b  ->  pass"),
    ("drop_stmt", "c -= 1  ->  pass"),
    ("drop_stmt", "log.append(LIMIT)  ->  pass"),
    ("return_bool", "return True  ->  return False"),
])
def test_each_operator_found(op, diff):
    assert (op, diff) in diffs()


def test_every_operator_is_exercised_by_the_sample():
    assert {op for op, _ in diffs()} == set(M.OPERATORS)


def test_mutants_compile_and_change_the_code_but_not_docstrings():
    tree = ast.dump(ast.parse(SAMPLE))
    ms = M.find_mutants("sample.py", SAMPLE)
    doc_lines = {1, 7}
    for m in ms:
        assert m.line not in doc_lines, m.id
        assert M.valid(m, SAMPLE), m.id
        assert ast.dump(ast.parse(m.apply(SAMPLE))) != tree, m.id
    assert len({m.id for m in ms}) == len(ms)          # ids are unique


def test_id_is_file_line_col_op():
    ids = {m.id for m in M.find_mutants("sample.py", SAMPLE)}
    assert "sample.py:8:10:cmp_boundary" in ids        # '<' of "    if x < lo:" (1-based col)
    assert "sample.py:16:5:drop_stmt" in ids


def test_keys_do_not_depend_on_line_numbers_or_comments():
    a = M.find_mutants("sample.py", SAMPLE)
    moved = b"# a new first line\n\n" + SAMPLE.replace(b"  # comment", b"  # other")
    b = M.find_mutants("sample.py", moved)
    assert [m.key for m in a] == [m.key for m in b]
    assert [m.id for m in a] != [m.id for m in b]


def test_sample_is_deterministic_per_seed_and_file():
    ms = M.find_mutants("sample.py", SAMPLE)
    one = M.sample(ms, 5, "1", "sample.py")
    assert [m.id for m in one] == [m.id for m in M.sample(ms, 5, "1", "sample.py")]
    assert len(one) == 5 and all(m in ms for m in one)
    others = [[m.id for m in M.sample(ms, 5, str(s), "sample.py")] for s in range(2, 6)]
    assert any(o != [m.id for m in one] for o in others)
    assert M.sample(ms, 0, "1", "sample.py") == ms


# -- end to end on a tiny project -------------------------------------------------------
TINY = b'''def clamp(x, lo, hi):
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


def count_to(n):
    i = 0
    while i < n:
        i += 1
    return i
'''

TINY_TEST = b'''from mptcp.tiny import clamp, count_to


def test_clamp():
    assert clamp(5, 0, 10) == 5
    assert clamp(-1, 0, 10) == 0
    assert clamp(11, 0, 10) == 10


def test_count():
    assert count_to(3) == 3
'''


def tiny_project(root, test=TINY_TEST):
    for d in ("firmware/mptcp", "tests/unit"):
        os.makedirs(os.path.join(root, d))
    files = {"firmware/mptcp/__init__.py": b"", "firmware/mptcp/tiny.py": TINY,
             "tests/unit/test_tiny.py": test}
    for rel, data in files.items():
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)


def snapshot(root):
    out = {}
    for d in ("firmware", "tests"):
        for base, dirs, names in os.walk(os.path.join(root, d)):
            for n in names + dirs:
                p = os.path.join(base, n)
                out[os.path.relpath(p, root)] = open(p, "rb").read() if n in names else None
    return out


def run(root, *args):
    out = io.StringIO()
    rc = M.main(["--root", str(root), "--files", "tiny.py", "-q", "--timeout", "20",
                 "--json", "results/m.json"] + list(args), out=out)
    data = None
    if os.path.exists(os.path.join(root, "results", "m.json")):
        with open(os.path.join(root, "results", "m.json")) as f:
            data = json.load(f)
    return rc, out.getvalue(), data


IDS = ["tiny.py:2:10:cmp_boundary",     # x < lo -> x <= lo: equivalent (returns lo == x)
       "tiny.py:2:8:negate_cond",       # breaks clamp: killed
       "tiny.py:4:8:negate_cond"]


def test_killed_survived_and_the_tree_is_untouched(tmp_path):
    tiny_project(tmp_path)
    before = snapshot(tmp_path)
    rc, text, data = run(tmp_path, *sum((["--id", i] for i in IDS), []))
    assert rc == 0, text
    st = {r["id"]: r["status"] for r in data["mutants"]}
    assert st == {IDS[0]: "survived", IDS[1]: "killed", IDS[2]: "killed"}
    assert data["files"]["tiny.py"]["kill_rate"] == pytest.approx(66.7)
    assert "tiny.py:2:10:cmp_boundary  if x < lo:  ->  if x <= lo:" in text
    assert snapshot(tmp_path) == before               # nothing written outside results/


def test_a_mutant_that_breaks_a_conftest_import_is_killed(tmp_path):
    """pytest exits 4 (a usage error) when conftest.py cannot import; with the unmutated
    suite passing, that is the mutant's doing (sched.py's dropped MINRTT const was an
    "error" before)."""
    tiny_project(tmp_path, b"from mptcp.tiny import DOUBLE\n\n\ndef test_double():\n"
                           b"    assert DOUBLE == 6\n")
    (tmp_path / "firmware" / "mptcp" / "tiny.py").write_bytes(b"LIMIT = 3\nDOUBLE = LIMIT * 2\n")
    (tmp_path / "tests" / "conftest.py").write_bytes(b"import mptcp.tiny\n")
    rc, text, data = run(tmp_path, "--id", "tiny.py:1:1:drop_stmt")
    assert rc == 0, text
    assert [r["status"] for r in data["mutants"]] == ["killed"]


def test_equivalent_list_is_honoured_and_excluded_from_the_rate(tmp_path):
    tiny_project(tmp_path)
    with open(tmp_path / "tests" / "mutants_equivalent.txt", "w") as f:
        f.write("# known equivalents\n\ntiny.py cmp_boundary\n- if x < lo:\n"
                "+ if x <= lo:\nwhy: x == lo returns lo, which is x\n")
    rc, text, data = run(tmp_path, *sum((["--id", i] for i in IDS), []))
    assert rc == 0, text
    row = [r for r in data["mutants"] if r["id"] == IDS[0]][0]
    assert row["status"] == "survived" and row["equivalent"] == "x == lo returns lo, which is x"
    s = data["files"]["tiny.py"]
    assert s["equivalent"] == 1
    assert s["kill_rate"] == pytest.approx(66.7) and s["kill_rate_excl_equivalent"] == 100.0
    assert "[equivalent: x == lo returns lo, which is x]" in text


def test_equivalent_list_rejects_malformed_records(tmp_path):
    p = tmp_path / "eq.txt"
    p.write_text("tiny.py cmp_boundary\n- if x < lo:\nwhy: missing the + line\n")
    with pytest.raises(SystemExit):
        M.load_equivalents(str(p))
    p.write_text("tiny.py no_such_op\n- a\n+ b\nwhy: c\n")
    with pytest.raises(SystemExit):
        M.load_equivalents(str(p))


def test_a_hanging_mutant_times_out_and_counts_as_killed(tmp_path):
    tiny_project(tmp_path)
    out = io.StringIO()
    rc = M.main(["--root", str(tmp_path), "--files", "tiny.py", "-q", "--timeout", "4",
                 "--id", "tiny.py:12:11:arith", "--json", "results/m.json", "-j", "1"],
                out=out)
    data = json.load(open(tmp_path / "results" / "m.json"))
    assert rc == 0 and data["mutants"][0]["status"] == "timeout"
    assert data["files"]["tiny.py"]["kill_rate"] == 100.0


def test_a_failing_unmutated_suite_stops_with_a_clear_error(tmp_path):
    tiny_project(tmp_path, TINY_TEST + b"\n\ndef test_broken():\n    assert clamp(1, 2, 3) == 1\n")
    rc, text, data = run(tmp_path, "--id", IDS[1])
    assert rc == 2 and data is None
    assert "fails WITHOUT any mutation" in text and "test_broken" in text


def test_unknown_file_operator_or_id_is_an_error(tmp_path):
    tiny_project(tmp_path)
    for args in (["--files", "nope.py"], ["--ops", "bogus"], ["--id", "tiny.py:99:1:const"]):
        with pytest.raises(SystemExit):
            M.main(["--root", str(tmp_path), "--list"] + args, out=io.StringIO())


def test_own_tests_run_first(tmp_path):
    d = tmp_path / "unit"
    d.mkdir()
    for n in ("test_a.py", "test_tcp.py", "test_tcpwire.py", "test_tcp_more.py", "test_uses.py"):
        (d / n).write_text("import mptcp.tcp\n" if n == "test_uses.py" else "\n")
    assert M.test_phases(str(d), "tcp") == [["test_tcp.py", "test_tcp_more.py"],
                                            ["test_uses.py", "test_a.py", "test_tcpwire.py"]]
    assert M.test_phases(str(d), "") == [["test_a.py", "test_tcp.py", "test_tcp_more.py",
                                          "test_tcpwire.py", "test_uses.py"]]
