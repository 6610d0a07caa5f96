"""The perf app's command line (DESIGN §4 contract): parsing and clear errors."""
from mptcp_apps import perf
from tutil import raises


def test_client_send():
    o = perf.parse_args(["--connect", "198.18.0.1:5001", "--send", "8M"])
    assert o["connect"] == ("198.18.0.1", 5001)
    assert o["send"] == 8 * 1024 * 1024 and not o["recv"]
    assert o["links"] == "wifi" and o["mptcp"] and not o["csum"]


def test_server_recv_with_options():
    o = perf.parse_args(["--listen", "6000", "--recv", "--links", "wifi", "--heap", "64k",
                         "--scheduler", "default", "--csum", "--no-mptcp", "--timeout", "5"])
    assert o["listen"] == 6000 and o["recv"] and o["send"] is None
    assert o["heap"] == 64 * 1024 and o["csum"] and not o["mptcp"] and o["timeout"] == 5


def test_schedulers_and_the_backup_link():
    base = ["--connect", "198.18.0.1:5001", "--send", "1M", "--links", "wifi,lte"]
    o = perf.parse_args(base)
    assert o["scheduler"] == "minrtt" and o["backup"] is None
    o = perf.parse_args(base + ["--scheduler", "default"])
    assert o["scheduler"] == "minrtt"
    o = perf.parse_args(base + ["--scheduler", "backup"])      # the last link is the backup
    assert o["scheduler"] == "backup" and o["backup"] == "lte"
    o = perf.parse_args(base + ["--scheduler", "roundrobin", "--backup", "wifi"])
    assert o["scheduler"] == "roundrobin" and o["backup"] == "wifi"
    o = perf.parse_args(["--connect", "h:1", "--send", "1", "--scheduler", "backup"])
    assert o["backup"] is None                                  # one link: nothing to back up
    raises(perf.UsageError, perf.parse_args, base[:4] + ["--backup", "lte"])   # not a link


def test_sizes():
    assert perf.parse_size("123") == 123
    assert perf.parse_size("4k") == 4096
    assert perf.parse_size("2MiB") == 2 * 1024 * 1024
    assert perf.parse_size("1G") == 1 << 30
    raises(perf.UsageError, perf.parse_size, "lots")


def test_bad_command_lines():
    bad = [
        [],
        ["--connect", "198.18.0.1:5001"],                       # no --send/--recv
        ["--connect", "198.18.0.1", "--recv"],                   # no port
        ["--connect", "h:1", "--listen", "2", "--recv"],         # both roles
        ["--listen", "1", "--send", "1", "--recv"],              # both directions
        ["--listen", "1", "--recv", "--links", "bluetooth"],     # unknown link
        ["--listen", "1", "--recv", "--scheduler", "fancy"],     # unknown scheduler
        ["--listen", "1", "--recv", "--backup", "satellite"],    # unknown backup link
        ["--listen", "1", "--recv", "--bogus"],                  # unknown option
        ["--listen"],                                            # missing value
        ["--listen", "1", "--recv", "--timeout", "0"],           # no time at all
        ["--listen", "1", "--recv", "--timeout", "600000"],      # beyond a tick difference
        ["--listen", "1", "--recv", "--lte-timeout", "1e9"],
    ]
    for argv in bad:
        raises(perf.UsageError, perf.parse_args, argv)


def test_help_exits_zero():
    assert perf.main(["--help"]) == 0
    assert perf.main(["--frobnicate"]) == 2
