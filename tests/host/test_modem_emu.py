"""The lab's modem emulator over a real pty (CPython, root for the TUN/namespace parts).

1. The device's TtySerial + AtEngine + Modem dial the emulator through every scenario.
2. The emulator's scapy-based network-side PPP is checked against a minimal PPP client
   written here with scapy (its own framing): LCP, PAP/CHAP, IPCP to 198.18.2.2, then ICMP
   crosses to TUN lte0 in namespace `mpmodem-test` and back, bytes checked; serial-rate
   pacing and the LTE delay checked on the emulator's (simulated) clock.
3. The device's PppNetif negotiates with the emulator and a packet crosses to the TUN and
   back, SHA-256 checked.
Timing is never asserted on the wall clock: order of events, counts and bytes are.
Every namespace/TUN/pty made here is removed, also on failure.
"""
import hashlib
import os
import select
import subprocess
import sys
import time

import pytest

import hostenv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for p in (os.path.join(ROOT, "firmware"), os.path.join(ROOT, "host_tools")):
    if p not in sys.path:
        sys.path.insert(0, p)

from scapy.layers.inet import IP, ICMP, UDP  # noqa: E402
from scapy.layers.ppp import (  # noqa: E402
    HDLC, PPP, PPP_CHAP, PPP_CHAP_ChallengeResponse, PPP_IPCP, PPP_IPCP_Option_DNS1,
    PPP_IPCP_Option_IPAddress, PPP_LCP, PPP_LCP_ACCM_Option, PPP_LCP_Configure,
    PPP_LCP_Echo, PPP_LCP_Magic_Number_Option, PPP_LCP_Option, PPP_PAP_Request,
    PPP_LCP_Terminate,
)

from mptcp_lab.modem_emu import ModemEmulator  # noqa: E402
from mptcp_net.serial_port import TtySerial  # noqa: E402
from mptcp_net.modem import Modem, DATA, ERROR, IDLE  # noqa: E402
from mptcp import ticks  # noqa: E402

NS = "mpmodem-test"
DEV = "198.18.2.2"
NET = "198.18.2.1"


# --- helpers ------------------------------------------------------------------------------------

class SimClock:
    """The emulator's (and the device's) clock in tests that check timing: it advances by
    `step` seconds per loop iteration, whatever the machine's speed, so what is asserted is
    the emulator's time model, not how fast this machine ran."""

    def __init__(self, step=0.0005):
        self.t = 1000.0
        self.step = step

    def __call__(self):
        return self.t


def spin(emu, until, timeout, dev=None, clock=None):
    """Drive the emulator (and a device callback) in one loop until until() or timeout
    (timeout: wall-clock seconds to wait, or simulated seconds with a SimClock)."""
    t_end = (clock() if clock is not None else time.monotonic()) + timeout
    deadline = time.monotonic() + max(timeout, 1) * 20     # bounds the wait only
    efd = emu.fds()[0]
    while True:
        if clock is not None:
            clock.t += clock.step
            now = clock.t
            if time.monotonic() > deadline:
                return False
        else:
            now = time.monotonic()
        emu.on_readable(efd, now)
        emu.on_timer(now)
        if dev is not None:
            dev(now)
        if until():
            return True
        if now > t_end:
            return False
        select.select([efd], [], [], 0.001)


def ms(now):
    """Monotonic seconds -> a tick (ms modulo 2**30), what the firmware's drivers take."""
    return int(now * 1000) & ticks.MASK


def bring_up(emu, pin=None, timeout=20, states=None, clock=None, **kw):
    """Dial the emulator with the device's Modem; `states` (a list) collects the modem's
    state after every poll when it changed."""
    ser = TtySerial(emu.slave_path)
    m = Modem(ser, apn="lab.apn", pin=pin, **kw)
    m.start(ms(clock() if clock is not None else time.monotonic()))

    def dev(now):
        m.poll(ms(now))
        if states is not None and (not states or states[-1] != m.state):
            states.append(m.state)
    ok = spin(emu, lambda: m.state in (DATA, ERROR), timeout, dev, clock)
    return m, ser, ok


def record_commands(emu):
    """[(AT command line, the emulator's clock then, registered then)] as the emulator
    handles them."""
    seen = []
    orig = emu._command

    def rec(line, now):
        seen.append((line.upper(), now, emu._registered(now)))
        orig(line, now)
    emu._command = rec
    return seen


@pytest.fixture
def emu_factory():
    made = []

    def make(**kw):
        e = ModemEmulator(**kw)
        made.append(e)
        return e
    yield make
    for e in made:
        e.close()


@pytest.fixture(scope="module")
def tun_ns():
    hostenv.root()
    from mptcp_lab import tun
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    fd = None
    try:
        subprocess.run(["ip", "netns", "add", NS], check=True)
        subprocess.run(["ip", "-n", NS, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "netns", "exec", NS, "sysctl", "-qw",
                        "net.ipv4.conf.all.rp_filter=0"], check=True)
        tmp = "mpmt%d" % (os.getpid() % 10000)
        fd = tun.open_tun(tmp)
        tun.place(tmp, NS, "lte0", NET, 24)
        yield fd
    finally:
        if fd is not None:
            os.close(fd)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)


# --- 1. the device's modem driver against the emulator --------------------------------------------

SCENARIOS = {
    "happy": ({}, None),
    "sim_pin": ({"sim_pin": "4321"}, "4321"),
    "slow_registration": ({"register_after_s": 2.0}, None),
    "error_cgdcont": ({"errors": {"AT+CGDCONT": 1}}, None),
    "cme_error_cpin": ({"errors": {"AT+CPIN?": {"count": 1, "reply": "+CME ERROR: 14"}}}, None),
    "dial_no_carrier": ({"errors": {"ATD": {"count": 2, "reply": "NO CARRIER"}}}, None),
    "noise_and_rdy": ({"noise": True, "rdy": True}, None),
    "roaming": ({"roaming": True, "csq": 31}, None),
    "no_echo_start": ({"echo": False}, None),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_device_dials_emulator(emu_factory, name):
    sc, pin = SCENARIOS[name]
    emu = emu_factory(scenario=sc)
    cmds = record_commands(emu)
    states = []
    m, ser, ok = bring_up(emu, pin=pin, states=states)
    dials = [(c, reg) for c, now, reg in cmds if c.startswith("ATD")]
    try:
        assert ok and m.state == DATA, (m.state, m.quality.as_dict(), m.stats())
        st = emu.status()
        assert st["mode"] == "data" and st["sessions"] == 1
        q = m.quality
        assert q.registered and q.rssi_dbm == -113 + 2 * sc.get("csq", 20)
        assert q.roaming == bool(sc.get("roaming"))
        if name == "slow_registration":
            # it asked while the network said "searching", and dialed once, when registered
            assert any(c.startswith("AT+CEREG?") and not reg for c, _, reg in cmds), cmds
            assert dials == [(dials[0][0], True)], dials
        if name in ("error_cgdcont", "cme_error_cpin"):
            assert m.stats()["redials"] == 1 and st["counters"]["scripted_errors"] == 1
        if name == "cme_error_cpin":
            assert m.stats()["cme_errors"] == 1
        if name == "dial_no_carrier":
            # NO CARRIER twice, a back-off before each re-dial (its length: test_modem.py)
            assert m.stats()["dial_failures"] == 2 and len(dials) == 3, (m.stats(), dials)
            assert states.count("backoff") == 2, states
            assert states.index("backoff") < len(states) - 1 and states[-1] == DATA, states
        if name == "noise_and_rdy":
            assert m.stats()["garbage_lines"] > 5
        # hang up cleanly: guard, +++, guard, ATH
        m.hangup(ms(time.monotonic()))
        assert spin(emu, lambda: m.state == IDLE, 6, lambda now: m.poll(ms(now)))
        st = emu.status()
        assert st["mode"] == "command" and st["counters"]["escapes"] == 1
        assert st["counters"]["hangups"] == 1
    finally:
        ser.close()


MPY_DIAL = r"""
import sys, time
from mptcp_net.serial_port import TtySerial
from mptcp_net.modem import Modem
from mptcp_runtime.clock import now_ms
from mptcp.ticks import diff
ser = TtySerial(sys.argv[1])
m = Modem(ser, apn="lab", pin=sys.argv[2])
m.start(now_ms())
t0 = now_ms()
while m.state not in ("data", "error") and diff(now_ms(), t0) < 20000:
    m.poll(now_ms())
    time.sleep_ms(2)
print("STATE", m.state, m.stats()["dials"], m.quality.rssi_dbm)
t1 = now_ms()
m.hangup(t1)
while m.state != "idle" and diff(now_ms(), t1) < 8000:
    m.poll(now_ms())
    time.sleep_ms(2)
print("STATE", m.state)
"""


def test_micropython_device_dials(emu_factory, tmp_path):
    """The same driver on the MicroPython unix port: TtySerial over the pty (raw, VMIN=0)."""
    mpy = hostenv.micropython()
    emu = emu_factory(scenario={"sim_pin": "2468", "register_after_s": 1.0, "noise": True})
    script = tmp_path / "dial.py"
    script.write_text(MPY_DIAL)
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "firmware"))
    p = subprocess.Popen([mpy, str(script), emu.slave_path, "2468"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        spin(emu, lambda: p.poll() is not None, 40)
    finally:
        if p.poll() is None:
            p.kill()
        out = p.communicate()[0]
    assert p.returncode == 0, out
    assert "STATE data 1 -73" in out and "STATE idle" in out, out
    k = emu.status()["counters"]
    assert k["dials"] == 1 and k["escapes"] == 1 and k["hangups"] == 1


def test_pyserial_dials(emu_factory):
    from mptcp_net.serial_port import PySerial
    emu = emu_factory(scenario={"register_after_s": 0.5})
    ser = PySerial(emu.slave_path, 921600)
    m = Modem(ser)
    m.start(ms(time.monotonic()))
    ok = spin(emu, lambda: m.state == DATA, 15, lambda now: m.poll(ms(now)))
    ser.close()
    assert ok, (m.state, m.stats())


def test_previous_run_left_modem_online(emu_factory):
    """A device that died in data mode leaves the modem online; the next run escapes it."""
    emu = emu_factory()
    m, ser, ok = bring_up(emu)
    assert ok
    ser.close()                  # crash: no LCP Terminate, no +++/ATH
    assert emu.status()["mode"] == "data"
    m2, ser2, ok2 = bring_up(emu, timeout=30)
    ser2.close()
    assert ok2 and m2.stats()["escapes"] == 1, (m2.state, m2.stats(), emu.status())
    # the emulator counts an escape only with its guard times kept (silence, +++, silence)
    st = emu.status()
    assert st["sessions"] == 2 and st["counters"]["escapes"] == 1, st


def test_sim_pin_missing_is_an_error(emu_factory):
    emu = emu_factory(scenario={"sim_pin": "1234"})
    m, ser, ok = bring_up(emu, pin=None)
    ser.close()
    assert m.state == ERROR and "SIM PIN required" in m.quality.last_error


def test_never_registers_backs_off(emu_factory):
    emu = emu_factory(scenario={"never_register": True})
    ser = TtySerial(emu.slave_path)
    m = Modem(ser, reg_timeout_ms=1500)
    m.start(ms(time.monotonic()))
    spin(emu, lambda: m.state == "backoff", 5, lambda now: m.poll(ms(now)))
    ser.close()
    assert m.state == "backoff" and "not registered" in m.quality.last_error


def test_no_carrier_mid_session_redials(emu_factory):
    emu = emu_factory(scenario={"no_carrier_after_s": 0.5})
    m, ser, ok = bring_up(emu)
    assert ok and m.state == DATA
    buf = bytearray(4096)
    seen = []

    def dev(now):
        if m.state == DATA:      # stands in for the PPP side watching for NO CARRIER
            n = ser.readinto(buf)
            if n and b"NO CARRIER" in bytes(buf[:n]):
                seen.append(now)
                m.carrier_lost(ms(now))
        else:
            m.poll(ms(now))
    assert spin(emu, lambda: bool(seen), 5, dev)
    assert spin(emu, lambda: m.state == DATA, 10, dev)
    ser.close()
    assert emu.status()["sessions"] == 2 and emu.status()["counters"]["no_carrier"] == 1
    s = m.stats()
    assert s["no_carrier"] >= 1 and s["redials"] == 1 and s["dials"] == 2


def test_link_down_then_up(emu_factory):
    emu = emu_factory()
    m, ser, ok = bring_up(emu)
    assert ok
    emu.set_up(False)
    assert emu.status()["mode"] == "command" and not emu.status()["registered"]
    m.carrier_lost(ms(time.monotonic()))
    spin(emu, lambda: False, 2.5, lambda now: m.poll(ms(now)))
    assert m.state != DATA                    # not registered while the link is down
    emu.set_up(True)
    assert spin(emu, lambda: m.state == DATA, 20, lambda now: m.poll(ms(now)))
    ser.close()


# --- 2. a minimal PPP client written here with scapy ----------------------------------------------

def _fcs(data):
    fcs = 0xFFFF
    for b in data:
        fcs ^= b
        for _ in range(8):
            fcs = (fcs >> 1) ^ 0x8408 if fcs & 1 else fcs >> 1
    return fcs


def frame(ppp_bytes):
    """Async-HDLC with every control character escaped (the default ACCM)."""
    fcs = _fcs(ppp_bytes) ^ 0xFFFF
    raw = ppp_bytes + bytes((fcs & 0xFF, fcs >> 8))
    out = bytearray(b"\x7e")
    for b in raw:
        if b < 0x20 or b in (0x7E, 0x7D):
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out + b"\x7e")


class ScapyPppClient:
    """Just enough of a PPP peer to check the emulator: every frame goes through scapy."""

    def __init__(self, ser, auth=None, user="u", password="p", want_dns=False):
        self.ser = ser
        self.auth = auth
        self.user = user
        self.password = password
        self.want_dns = want_dns
        self.buf = b""
        self.rx = []              # parsed scapy packets received (HDLC/PPP/...)
        self.ip_rx = []
        self.lcp_ours = self.lcp_theirs = False
        self.ipcp_ours = self.ipcp_theirs = False
        self.authed = auth is None
        self.addr = "0.0.0.0"
        self.dns = None
        self.magic = 0x1234ABCD
        self.id = 1
        self.echo_replies = []
        self.bad_fcs = 0

    def send(self, pkt):
        data = frame(bytes(HDLC() / pkt))
        while data:
            n = self.ser.write(data)
            data = data[n:]
            if data:
                time.sleep(0.001)

    def start(self):
        self.send(PPP(proto=0xC021) / PPP_LCP_Configure(code=1, id=self.id, options=[
            PPP_LCP_ACCM_Option(accm=0), PPP_LCP_Magic_Number_Option(magic_number=self.magic),
            PPP_LCP_Option(type=7), PPP_LCP_Option(type=8)]))

    def ipcp_req(self):
        self.id += 1
        opts = [PPP_IPCP_Option_IPAddress(data=self.addr)]
        if self.want_dns:
            opts.append(PPP_IPCP_Option_DNS1(data=self.dns or "0.0.0.0"))
        self.send(PPP(proto=0x8021) / PPP_IPCP(code=1, id=self.id, options=opts))

    def poll(self, now=None):
        b = bytearray(4096)
        n = self.ser.readinto(b)
        if not n:
            return
        self.buf += bytes(b[:n])
        while b"\x7e" in self.buf:
            raw, self.buf = self.buf.split(b"\x7e", 1)
            if not raw:
                continue
            out = bytearray()
            esc = False
            for c in raw:
                if c == 0x7D:
                    esc = True
                elif esc:
                    out.append(c ^ 0x20)
                    esc = False
                else:
                    out.append(c)
            if len(out) < 4 or _fcs(bytes(out)) != 0xF0B8:
                self.bad_fcs += 1
                continue
            self.handle(bytes(out[:-2]))

    def handle(self, data):
        pkt = PPP(data)        # dispatches to HDLC when address/control are present
        self.rx.append(pkt)
        proto = pkt[PPP].proto
        body = pkt[PPP].payload
        if proto == 0xC021:
            assert isinstance(body, PPP_LCP), pkt.summary()
            lcp = body
            assert pkt.haslayer(HDLC), "LCP frames must keep address/control (RFC 1661 6.6)"
            if lcp.code == 1:
                self.send(PPP(proto=0xC021) / PPP_LCP_Configure(code=2, id=lcp.id,
                                                                options=lcp.options))
                self.lcp_theirs = True
                for o in lcp.options:
                    if o.type == 3:
                        assert self.auth is not None
            elif lcp.code == 2:
                self.lcp_ours = True
            elif lcp.code == 10:
                self.echo_replies.append(lcp)
            elif lcp.code == 9:
                self.send(PPP(proto=0xC021) / PPP_LCP_Echo(code=10, id=lcp.id,
                                                           magic_number=self.magic, data=lcp.data))
            if self.lcp_ours and self.lcp_theirs and lcp.code in (1, 2):
                if self.auth == "pap":
                    self.send(PPP(proto=0xC023) / PPP_PAP_Request(
                        id=7, username=self.user.encode(), password=self.password.encode()))
                elif self.auth is None:
                    self.ipcp_req()
        elif proto == 0xC223:
            ch = body
            if ch.code == 1:
                ch = PPP_CHAP_ChallengeResponse(bytes(ch))
                v = hashlib.md5(bytes((ch.id,)) + self.password.encode() + ch.value).digest()
                self.send(PPP(proto=0xC223) / PPP_CHAP_ChallengeResponse(
                    code=2, id=ch.id, value=v, optional_name=self.user.encode()))
            elif ch.code == 3:
                self.authed = True
                self.ipcp_req()
        elif proto == 0xC023:
            if bytes(body)[0] == 2:
                self.authed = True
                self.ipcp_req()
        elif proto == 0x8021:
            ip = body
            if ip.code == 1:
                self.send(PPP(proto=0x8021) / PPP_IPCP(code=2, id=ip.id, options=ip.options))
                self.ipcp_theirs = True
            elif ip.code == 3:
                for o in ip.options:
                    if o.type == 3:
                        self.addr = o.data
                    elif o.type == 129:
                        self.dns = o.data
                self.ipcp_req()
            elif ip.code == 2:
                self.ipcp_ours = True
        elif proto == 0x0021:
            self.ip_rx.append(bytes(body))

    @property
    def up(self):
        return self.ipcp_ours and self.ipcp_theirs


def ppp_session(emu, scenario_auth=None, clock=None, **client_kw):
    m, ser, ok = bring_up(emu, clock=clock)
    assert ok and m.state == DATA
    c = ScapyPppClient(ser, **client_kw)
    if m.leftover:
        c.buf = bytes(m.leftover)
    c.start()
    assert spin(emu, lambda: c.up, 15, c.poll, clock), (emu.status(),
                                                        [p.summary() for p in c.rx])
    return m, ser, c


def ping(emu, c, payload, timeout=10, ident=0x4242, seq=1, clock=None):
    pkt = IP(src=DEV, dst=NET, id=seq) / ICMP(type=8, id=ident, seq=seq) / payload
    before = len(c.ip_rx)
    c.send(PPP(proto=0x0021) / pkt)
    ok = spin(emu, lambda: any(IP(p).haslayer(ICMP) and IP(p)[ICMP].type == 0 and
                                IP(p)[ICMP].seq == seq for p in c.ip_rx[before:]),
              timeout, c.poll, clock)
    assert ok, emu.status()
    for p in c.ip_rx[before:]:
        r = IP(p)
        if r.haslayer(ICMP) and r[ICMP].seq == seq:
            return r


def test_scapy_client_ipcp_and_icmp_through_tun(emu_factory, tun_ns):
    emu = emu_factory(tun_fd=tun_ns, scenario={"dns": ["198.18.0.53"]})
    m, ser, c = ppp_session(emu, want_dns=True)
    try:
        assert c.addr == DEV and c.dns == "198.18.0.53"
        payload = os.urandom(1000)
        r = ping(emu, c, payload)
        assert r.src == NET and r.dst == DEV
        assert hashlib.sha256(bytes(r[ICMP].payload)).digest() == hashlib.sha256(payload).digest()
        # LCP echo answered with the emulator's magic
        c.send(PPP(proto=0xC021) / PPP_LCP_Echo(code=9, id=99, magic_number=c.magic, data=b"x"))
        assert spin(emu, lambda: bool(c.echo_replies), 3, c.poll)
        assert c.echo_replies[0].id == 99
        # after LCP opened the emulator compresses (we offered ACFC/PFC) for IP frames
        ipf = [p for p in c.rx if p[PPP].proto == 0x0021]
        assert ipf and not ipf[0].haslayer(HDLC)
        st = emu.status()["counters"]
        assert st["up_packets"] >= 1 and st["down_packets"] >= 1
        assert st["ppp_hdlc_bad_fcs"] == 0 and c.bad_fcs == 0
        # a UDP datagram to a closed port comes back as ICMP port unreachable
        c.send(PPP(proto=0x0021) / IP(src=DEV, dst=NET) / UDP(sport=4000, dport=9) / b"hi")
        assert spin(emu, lambda: any(IP(p).haslayer(ICMP) and IP(p)[ICMP].type == 3
                                     for p in c.ip_rx), 5, c.poll)
        # terminate: the emulator acks
        c.send(PPP(proto=0xC021) / PPP_LCP_Terminate(code=5, id=55))
        assert spin(emu, lambda: any(p[PPP].proto == 0xC021 and p[PPP].payload.code == 6
                                     for p in c.rx), 3, c.poll)
    finally:
        ser.close()


@pytest.mark.parametrize("auth", ["pap", "chap"])
def test_scapy_client_auth(emu_factory, tun_ns, auth):
    emu = emu_factory(tun_fd=tun_ns, scenario={"auth": auth, "user": "dev", "password": "s3"})
    m, ser, c = ppp_session(emu, auth=auth, user="dev", password="s3")
    try:
        r = ping(emu, c, b"auth-" + auth.encode())
        assert bytes(r[ICMP].payload) == b"auth-" + auth.encode()
    finally:
        ser.close()


def test_scapy_client_wrong_password_refused(emu_factory):
    emu = emu_factory(scenario={"auth": "chap", "user": "dev", "password": "right"})
    m, ser, ok = bring_up(emu)
    c = ScapyPppClient(ser, auth="chap", user="dev", password="wrong")
    c.start()
    spin(emu, lambda: emu.ppp.c["auth_failures"] > 0, 8, c.poll)
    ser.close()
    assert emu.ppp.c["auth_failures"] == 1 and not c.up


def test_serial_rate_and_delay(tun_ns):
    """On the emulator's clock (simulated, so the machine's speed does not matter): the line
    never carries more than baud/10 bytes a second, each way; a ping's round trip is never
    shorter than twice the LTE delay; a rate set on the fly takes effect."""
    clock = SimClock()
    emu = ModemEmulator(tun_fd=tun_ns, baud=115200, delay_ms=30, clock=clock)
    try:
        m, ser, c = ppp_session(emu, clock=clock)
        try:
            t = clock()
            ping(emu, c, b"x" * 8, seq=1, clock=clock)
            assert clock() - t >= 0.060, clock() - t
            n, size = 10, 1000
            down0 = emu.status()["counters"]["down_bytes"]
            t = clock()
            for i in range(n):
                ping(emu, c, os.urandom(size), seq=100 + i, clock=clock)
            dt = clock() - t
            moved = emu.status()["counters"]["down_bytes"] - down0
            # each ping is serialised up, then delayed, then serialised down
            floor = n * (2 * (size + 28 + 8) / 11520.0 + 0.06)
            assert moved >= n * (size + 28) and dt >= floor * 0.95, (moved, dt, floor)
            assert moved <= 11520 * dt * 1.05 + 64, (moved, dt)
            # change the rate on the fly: 8 x faster, 5 ms delay
            emu.set(baud=921600, delay_ms=5)
            st = emu.status()
            assert (st["baud"], st["delay_ms"]) == (921600, 5.0), st
            down0 = st["counters"]["down_bytes"]
            t = clock()
            for i in range(n):
                ping(emu, c, os.urandom(size), seq=200 + i, clock=clock)
            dt2 = clock() - t
            moved2 = emu.status()["counters"]["down_bytes"] - down0
            assert moved2 >= n * (size + 28) and dt2 >= n * 0.010, (moved2, dt2)
            assert moved2 <= 92160 * dt2 * 1.05 + 64, (moved2, dt2)
            print("line: %.0f B/s at 115200 baud, %.0f B/s at 921600 (simulated clock)"
                  % (moved / dt, moved2 / dt2))
            assert moved2 > 11520 * dt2 * 1.5, ("still at the old rate", moved2, dt2)
        finally:
            ser.close()
    finally:
        emu.close()


def test_bad_input_frames_counted(emu_factory):
    emu = emu_factory()
    m, ser, ok = bring_up(emu)
    c = ScapyPppClient(ser)
    c.start()
    good = frame(bytes(HDLC() / PPP(proto=0xC021) / PPP_LCP_Echo(code=9, id=3, magic_number=0)))
    junk = [os.urandom(300), b"\x7e\x7d\x7e", good[:-5] + b"\x00\x7e",
            b"\x7e" + b"A" * 10000 + b"\x7e", b"\x7e\xff\x03\xc0\x21\x01\x7e"]
    for j in junk:
        ser.write(j)
        spin(emu, lambda: False, 0.05, c.poll)
    assert spin(emu, lambda: c.up, 10, c.poll)
    ser.close()
    k = emu.status()["counters"]
    assert k["ppp_hdlc_bad_fcs"] + k["ppp_hdlc_too_short"] + k["ppp_hdlc_too_long"] + \
        k["ppp_hdlc_bad_escape"] >= 3


# --- 3. the device's own PPP netif against the emulator -------------------------------------------

def _check_device_frames(frames):
    """Every frame the device sent must parse with scapy into a known PPP layer and, for
    control protocols, re-encode to exactly the bytes sent (no trailing junk, sane lengths)."""
    known = {0xC021: PPP_LCP, 0x8021: PPP_IPCP, 0xC223: PPP_CHAP, 0xC023: None, 0x0021: IP}
    assert frames
    for f in frames:
        p = PPP(f)
        ppp = p[PPP]
        assert ppp.proto in known, p.summary()
        body = bytes(ppp.payload)
        if ppp.proto == 0x0021:
            ip = IP(body)
            assert ip.len == len(body) and ip.src == DEV
        elif ppp.proto == 0xC023:
            assert body[0] == 1 and len(body) == (body[2] << 8 | body[3])
        else:
            assert len(body) == (body[2] << 8 | body[3]), p.summary()
            assert bytes(ppp.payload.__class__(body)) == body, p.summary()
        if ppp.proto == 0xC021:
            assert p.haslayer(HDLC) and f[2:4] == b"\xc0\x21"   # never compressed (RFC 1661)


def _record_frames(emu):
    frames = []
    orig = emu.ppp._frame

    def rec(frame, now):
        frames.append(bytes(frame))
        orig(frame, now)
    emu.ppp._frame = rec
    return frames


def _device_link(emu, auth):
    from mptcp_net.ppp_netif import PppNetif
    m, ser, ok = bring_up(emu)
    assert ok and m.state == DATA
    clock = lambda: ms(time.monotonic())  # noqa: E731
    nif = PppNetif(ser, clock=clock, auth=auth)
    nif.start(clock(), m.leftover)
    got = []
    buf = bytearray(2048)

    def dev(now):
        nif.poll(ms(now))
        while True:
            n = nif.recv_into(buf)
            if not n:
                break
            got.append(bytes(buf[:n]))
    return m, ser, nif, got, dev


@pytest.mark.parametrize("auth", [None, "pap", "chap"])
def test_device_pppnetif_auth_modes(emu_factory, tun_ns, auth):
    sc = {"dns": ["198.18.0.53", "198.18.0.54"]}
    if auth:
        sc.update({"auth": auth, "user": "dev", "password": "pw"})
    emu = emu_factory(tun_fd=tun_ns, scenario=sc)
    frames = _record_frames(emu)
    m, ser, nif, got, dev = _device_link(emu, (auth, b"dev", b"pw") if auth else None)
    try:
        assert spin(emu, lambda: nif.up, 15, dev), (nif.stats(), emu.status())
        sent = []
        for i in range(5):
            payload = os.urandom(1400)
            sent.append(hashlib.sha256(payload).hexdigest())
            pkt = bytes(IP(src=DEV, dst=NET, id=100 + i) / ICMP(type=8, id=6, seq=i) / payload)
            assert nif.send(memoryview(pkt), len(pkt))
        assert spin(emu, lambda: sum(1 for p in got if IP(p).haslayer(ICMP)) >= 5, 10, dev)
        back = sorted(hashlib.sha256(bytes(IP(p)[ICMP].payload)).hexdigest()
                      for p in got if IP(p).haslayer(ICMP))
        assert back == sorted(sent)
        _check_device_frames(frames)
        k = emu.status()["counters"]
        assert k["ppp_hdlc_bad_fcs"] == 0 and k["ppp_bad_packets"] == 0
        assert k["ppp_auth_failures"] == 0
    finally:
        ser.close()


def test_device_no_carrier_redial_ppp_again(emu_factory, tun_ns):
    """NO CARRIER mid-session: the netif sees it, the modem re-dials, PPP comes back."""
    from mptcp_net.ppp_netif import PppNetif
    emu = emu_factory(tun_fd=tun_ns, scenario={"no_carrier_after_s": 2.0})
    m, ser, nif, got, dev = _device_link(emu, None)
    clock = lambda: ms(time.monotonic())  # noqa: E731
    links = [nif]

    def on_data(mm):
        n2 = PppNetif(ser, clock=clock)
        n2.start(clock(), mm.leftover)
        links.append(n2)
    m.on_data_mode = on_data
    buf = bytearray(2048)

    def loop(now):
        cur = links[-1]
        if m.state == DATA:
            cur.poll(ms(now))
            while cur.recv_into(buf):
                pass
            if cur.state == "dead" and cur.reason == "no-carrier":
                m.carrier_lost(ms(now))
        else:
            m.poll(ms(now))
    try:
        assert spin(emu, lambda: nif.up, 15, loop)
        assert spin(emu, lambda: nif.reason == "no-carrier", 10, loop), nif.stats()
        assert spin(emu, lambda: len(links) == 2 and links[1].up, 20, loop), \
            (m.state, m.stats(), emu.status())
        assert m.stats()["redials"] == 1 and emu.status()["sessions"] == 2
    finally:
        ser.close()


def test_device_pppnetif_through_emulator(emu_factory, tun_ns):
    from mptcp_net.ppp_netif import PppNetif
    from scapy.layers.inet import ICMP as _ICMP
    emu = emu_factory(tun_fd=tun_ns, scenario={"auth": "chap", "user": "dev", "password": "pw"})
    m, ser, ok = bring_up(emu)
    assert ok and m.state == DATA
    clock = lambda: ms(time.monotonic())  # noqa: E731
    nif = PppNetif(ser, clock=clock, auth=("chap", b"dev", b"pw"))
    nif.start(clock(), m.leftover)
    buf = bytearray(2048)
    got = []

    def dev(now):
        nif.poll(ms(now))
        while True:
            n = nif.recv_into(buf)
            if not n:
                break
            got.append(bytes(buf[:n]))
    try:
        assert spin(emu, lambda: nif.up, 15, dev), (nif.stats(), emu.status())
        assert bytes(nif.addr) == bytes([198, 18, 2, 2])
        payload = os.urandom(1200)
        pkt = bytes(IP(src=DEV, dst=NET, id=77) / _ICMP(type=8, id=5, seq=9) / payload)
        assert nif.send(memoryview(pkt), len(pkt))
        assert spin(emu, lambda: any(IP(p).haslayer(_ICMP) and IP(p)[_ICMP].type == 0
                                     for p in got), 10, dev), (nif.stats(), emu.status())
        rep = [IP(p) for p in got if IP(p).haslayer(_ICMP)][0]
        assert hashlib.sha256(bytes(rep[_ICMP].payload)).hexdigest() == \
            hashlib.sha256(payload).hexdigest()
        k = emu.status()["counters"]
        assert k["ppp_hdlc_bad_fcs"] == 0 and k["ppp_bad_packets"] == 0
    finally:
        ser.close()


# --- 4. the network side never raises on bad frames -------------------------------------------------

def test_ppp_net_fuzz_never_raises():
    import random
    from mptcp_lab.ppp_net import PppNet, hdlc_encode
    rnd = random.Random(7)
    out = []
    for auth in (None, "pap", "chap"):
        p = PppNet(out.append, lambda pkt: None, auth=auth, dns=["198.18.0.53"])
        p.start(0.0)
        now = 0.0
        for i in range(3000):
            proto = rnd.choice([0xC021, 0x8021, 0xC023, 0xC223, 0x0021, 0x8057, rnd.getrandbits(16)])
            code = rnd.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 255])
            body = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 40)))
            if rnd.random() < 0.7:     # mostly well-formed headers with junk options
                ln = 4 + len(body) if rnd.random() < 0.8 else rnd.randrange(0, 70)
                info = bytes((code, rnd.getrandbits(8), ln >> 8, ln & 0xFF)) + body
            else:
                info = body
            hdr = b"\xff\x03" if rnd.random() < 0.5 else b""
            p.feed(hdlc_encode(hdr + proto.to_bytes(2, "big") + info), now)
            if rnd.random() < 0.05:
                p.feed(bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 50))), now)
            now += 0.01
            p.on_timer(now)
        c = p.counters()
        assert c["rx_frames"] > 2000
