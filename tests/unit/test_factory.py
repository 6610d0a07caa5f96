"""mptcp_runtime.factory: the stack sized and configured from a board config."""
from mptcp_runtime import factory
from tutil import raises


class _Board:
    SND_BUF = 4096
    RCV_BUF = 8192
    MAX_CONNECTIONS = 1
    MAX_SUBFLOWS = 2
    SCHEDULER = "backup"
    BACKUP_LINK = "lte"


def test_the_board_sizes_and_configures_the_stack():
    st = factory.make_stack(_Board)
    assert st.snd_buf == 4096 and st.rcv_buf == 8192 and st.max_conns == 1
    assert st.max_subflows == 2 and st.sched.name == "backup"


def test_arguments_override_the_board_and_defaults_fill_in():
    st = factory.make_stack(_Board, snd_buf=1024, scheduler="roundrobin", max_conns=3)
    assert st.snd_buf == 1024 and st.rcv_buf == 8192 and st.max_conns == 3
    assert st.sched.name == "roundrobin"
    st = factory.make_stack(None)
    assert st.snd_buf == 32768 and st.max_conns == 2 and st.max_subflows == 4
    assert st.sched.name == "minrtt"
    raises(KeyError, factory.setting, _Board, "NO_SUCH_SETTING")


def test_backup_link():
    assert factory.backup_link(_Board, "minrtt", ["wifi", "lte"]) == "lte"
    assert factory.backup_link(_Board, "minrtt", ["wifi"]) is None        # not a link here
    assert factory.backup_link(None, "backup", ["wifi", "lte"]) == "lte"  # the last one
    assert factory.backup_link(None, "backup", ["wifi"]) is None
    assert factory.backup_link(None, "minrtt", ["wifi", "lte"]) is None


class _Cfg:
    pass


def test_the_shipped_boards_configure_a_stack():
    from tutil import NotApplicable
    for name in ("pico_w", "rpi", "unix_lab"):
        try:
            with open("boards/%s/mptcp_board.py" % name) as f:
                src = f.read()
        except OSError:
            # (the WebAssembly runner's filesystem holds firmware/ and tests/ only)
            raise NotApplicable("boards/ is not in this runner's filesystem")
        ns = {}
        exec(src, ns)
        mod = _Cfg()
        for k in ns:
            setattr(mod, k, ns[k])
        st = factory.make_stack(mod)
        assert st.snd_buf == ns["SND_BUF"] and st.max_subflows == ns["MAX_SUBFLOWS"]
        assert st.sched.name == ns["SCHEDULER"] and st.max_conns == ns["MAX_CONNECTIONS"]
