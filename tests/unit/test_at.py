"""AT engine (mptcp_net.at) against scripted byte streams with a fake clock; both interpreters."""
from mptcp import ticks
from mptcp_net.at import AtEngine, parse_ints, OK, ERROR, CME_ERROR, CONNECT, TIMEOUT


def _eng():
    urcs = []
    e = AtEngine(urcs.append, max_line=64)
    return e, urcs


def test_ok_with_info_line_and_echo():
    e, urcs = _eng()
    assert e.send("AT+CSQ", 0, 1000)
    assert e.data_to_send() == b"AT+CSQ\r"
    assert not e.send("AT", 0)            # one command at a time
    e.feed(b"AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n", -1, 10)   # echo before ATE0
    assert e.done and e.final == OK
    assert e.lines == ["+CSQ: 20,99"]
    assert urcs == []
    assert parse_ints(e.lines[0]) == [20, 99]


def test_byte_by_byte_and_split_lines():
    e, urcs = _eng()
    e.send("AT+CEREG?", 0)
    for b in b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n":
        e.feed(bytes([b]), 1, 0)
    assert e.final == OK and e.lines == ["+CEREG: 0,1"]


def test_error_and_cme_error():
    e, _ = _eng()
    e.send("AT+CGDCONT=1,\"IP\",\"x\"", 0)
    e.feed(b"\r\nERROR\r\n")
    assert e.final == ERROR and e.errors == 1
    e.send("AT+CPIN?", 0)
    e.feed(b"\r\n+CME ERROR: 10\r\n")
    assert e.final == CME_ERROR and e.code == 10 and e.cme_errors == 1
    e.send("AT+CMGS", 0)
    e.feed(b"\r\n+CMS ERROR: 500\r\n")
    assert e.final == "+CMS ERROR" and e.code == 500


def test_timeout():
    e, _ = _eng()
    e.send("AT", 100, 1000)
    assert e.next_deadline() == 1100
    assert not e.poll(1099)
    assert e.poll(1100)
    assert e.final == TIMEOUT and e.timeouts == 1 and not e.busy()
    assert e.next_deadline() == -1
    e.feed(b"\r\nOK\r\n")                  # a late OK is a stray line, not a result
    assert e.stray_lines == 1 and e.final == TIMEOUT


def test_urcs_dispatched_while_idle_and_pending():
    e, urcs = _eng()
    e.feed(b"\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\n+CEREG: 5\r\nRING\r\n")
    assert urcs == ["RDY", "+CPIN: READY", "+CEREG: 5", "RING"]
    e.send("AT+CSQ", 0)
    e.feed(b"\r\n+CEREG: 1,\"1A\",\"2B\",7\r\n+CSQ: 31,0\r\nOK\r\n")
    assert urcs[-1] == "+CEREG: 1,\"1A\",\"2B\",7"
    assert e.lines == ["+CSQ: 31,0"]
    e.feed(b"\r\nNO CARRIER\r\n")         # idle: a URC
    assert urcs[-1] == "NO CARRIER"


def test_cpin_answer_is_info_not_urc():
    e, urcs = _eng()
    e.send("AT+CPIN?", 0)
    e.feed(b"\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n")
    assert e.lines == ["+CPIN: SIM PIN"] and urcs == []


def test_connect_hands_rest_to_ppp():
    e, _ = _eng()
    e.send("ATD*99#", 0, 30000)
    e.feed(b"\r\nCONNECT 921600\r\n~\xff}#\xc0!~")
    assert e.final == CONNECT and e.code == 921600 and e.data_mode
    assert e.leftover == b"~\xff}#\xc0!~"
    e.feed(b"\x7e\x01")                   # data mode: nothing parsed
    assert e.leftover.endswith(b"\x7e\x01")
    e.reset_parser()
    assert not e.data_mode and e.leftover == b""
    e.send("ATD*99#", 0)
    e.feed(b"\r\nCONNECT\r\n")
    assert e.final == CONNECT and e.code is None


def test_dial_failures():
    for word in ("NO CARRIER", "BUSY", "NO DIALTONE", "NO ANSWER"):
        e, urcs = _eng()
        e.send("ATD*99#", 0)
        e.feed(b"\r\n" + word.encode() + b"\r\n")
        assert e.final == word and urcs == []


def test_garbage_binary_and_overlong_never_raise():
    e, urcs = _eng()
    e.send("AT", 0)
    e.feed(b"\x00\xff\x7e\x7d\x01junk\r\n")
    e.feed(b"x" * 200 + b"\r\n")           # overlong: dropped whole
    e.feed(bytes(range(256)))
    e.feed(b"\r\n\r\n\n\n\r\r")
    assert e.garbage_lines >= 2 and e.overlong_lines == 2   # 200 x, and bytes 14..255
    assert e.busy()
    e.feed(b"\r\nOK\r\n")
    assert e.final == OK
    assert e.stray_lines == 0


def test_random_noise_fuzz():
    seed = 12345
    e, _ = _eng()
    for i in range(300):
        if not e.busy():
            e.send("AT+CSQ", i, 5)
        chunk = bytearray(17)
        for j in range(17):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            chunk[j] = (seed >> 16) & 0xFF
        e.feed(chunk, -1, i)
        e.poll(i)
    e.reset_parser()
    if e.busy():
        e.cancel()
    e.send("AT", 1000)
    e.feed(b"\r\nOK\r\n")
    assert e.final == OK


def test_partial_write_put_back():
    e, _ = _eng()
    e.send("ATE0", 0)
    out = e.data_to_send()
    e.unsend(out[2:])
    e.send_raw(b"+++")
    assert e.data_to_send() == b"E0\r+++"


def test_parse_ints():
    assert parse_ints('+CEREG: 2,1,"00C3","0A1B2C3D",7') == [2, 1, None, None, 7]
    assert parse_ints("+CSQ: 99,99") == [99, 99]
    assert parse_ints("+X: -5, x") == [-5, None]


def test_timeout_across_the_ticks_wrap():
    """A command sent 0.5 s before the 2**30 ms wrap times out 1 s later, at tick 500:
    not before, and not never (the deadline is a tick, not now + timeout)."""
    e, _ = _eng()
    t0 = ticks.PERIOD - 500
    e.send("AT", t0, 1000)
    assert e.next_deadline() == 500
    for now in (t0, ticks.MASK, 0, 499):
        assert not e.poll(now), now
    assert e.poll(500)
    assert e.final == TIMEOUT and e.timeouts == 1
    # polled late, after the wrap: a deadline just before it is due
    e.send("AT", ticks.MASK - 1001, 1000)
    assert e.next_deadline() == ticks.MASK - 1
    assert not e.poll(ticks.MASK - 2)
    assert e.poll(3) and e.timeouts == 2
    # answered in time across the wrap: no timeout
    e.send("AT", ticks.MASK, 1000)
    e.feed(b"\r\nOK\r\n", -1, 998)
    assert not e.poll(2000) and e.final == OK and e.timeouts == 2
