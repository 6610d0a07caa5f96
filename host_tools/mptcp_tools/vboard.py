"""Virtual board: the MicroPython unix port behind a pty, speaking a board's REPL.

    mptcp-vboard ROOT [--readonly] [--full BYTES [--report-free BYTES]] [--silent]
                      [--dev] [--heap SIZE]

Prints the pty path (/dev/pts/N) on one line, then serves until killed. The real
`mpremote` (and so mptcp-flash) talks to it as to a board on a USB serial port: friendly
REPL with banner, Ctrl-A raw REPL, raw-paste (Ctrl-E 'A' Ctrl-A, windowed flow control),
Ctrl-B, Ctrl-C interrupt, Ctrl-D soft reset ("MPY: soft reboot": a fresh interpreter,
boot.py, and main.py in friendly mode). The folder ROOT is the board's filesystem "/".
Variants, for testing tools against bad boards: --readonly (writes fail with EROFS),
--full BYTES (a filesystem of that capacity: ENOSPC past it; os.statvfs reports it, or
--report-free BYTES if given, as a filesystem that over-reports free space does),
--silent (the port opens but nothing ever answers). --dev mounts the host's /dev at /dev
so that the board can open serial ports: in the lab, the modem emulator's pty is then its
LTE UART (and the emulator's UDP port on 127.0.0.1 its Wi-Fi), as for the lab device.

This process owns the serial-line protocol; the interpreter (vboard_agent.py, a child
process restarted at every soft reset) only executes jobs.
"""
import argparse
import contextlib
import os
import select
import signal
import subprocess
import sys
import tty

AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vboard_agent.py")
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
PASTE_WINDOW = 256          # raw-paste flow-control window (bytes), as small boards use


def _die_with_parent():
    """The interpreter is killed when this process dies, even by SIGKILL (Linux)."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def default_micropython():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    return exe if os.path.exists(exe) else "micropython"


class VBoard:
    def __init__(self, root, micropython=None, readonly=False, full=None, report_free=None,
                 heap=None, dev=False):
        self.root = os.path.abspath(root)
        self.mpy = micropython or default_micropython()
        self.agent_args = [self.root] + (["--readonly"] if readonly else [])
        if full is not None:
            self.agent_args += ["--full", str(full)]
            if report_free is not None:
                self.agent_args += ["--report-free", str(report_free)]
        if dev:
            self.agent_args.append("--dev")
        self.heap = heap
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self.slave)
        self.child = None
        self.out = bytearray()        # bytes waiting to go to the pty
        self.pending = bytearray()    # input that arrived while a job ran
        self.mode = "friendly"        # friendly | raw | paste
        self.line = bytearray()       # raw REPL input / friendly REPL line
        self.block = []               # friendly REPL: lines of a compound statement
        self.jobs = []                # queued (kind, source, how) to run in the child
        self.job = None               # (how, eofs seen)
        self.banner = b"MicroPython"
        self.paste_got = 0

    # -- output to the serial line ------------------------------------------------
    def emit(self, data):
        self.out += data

    def _flush(self):
        if self.out:
            try:
                n = os.write(self.master, self.out)
            except BlockingIOError:
                return
            del self.out[:n]

    # -- the interpreter ----------------------------------------------------------
    def _spawn(self):
        cmd = [self.mpy] + (["-X", "heapsize=%s" % self.heap] if self.heap else [])
        self.child = subprocess.Popen(cmd + [AGENT] + self.agent_args, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      start_new_session=True, bufsize=0,
                                      preexec_fn=_die_with_parent)
        os.set_blocking(self.child.stdout.fileno(), False)
        self.jobs = [("init", b"", "init"), ("p", b"boot.py", "boot")]
        if self.mode == "friendly":
            self.jobs.append(("p", b"main.py", "boot"))
        self._next_job()

    def _kill(self):
        if self.child is not None:
            try:
                os.killpg(self.child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.child.wait()
            self.child.stdin.close()
            self.child.stdout.close()
            self.child = None

    def soft_reset(self, announce=True):
        self._kill()
        if announce:
            self.emit(b"MPY: soft reboot\r\n")
        self.line = bytearray()
        self.block = []
        if self.mode == "paste":
            self.mode = "raw"
        self._spawn()

    def _next_job(self):
        kind, src, how = self.jobs.pop(0)
        self.job = [how, 0, [bytearray(), bytearray()]]
        if kind != "init":
            self.child.stdin.write(b"%s %d\n" % (kind.encode(), len(src)) + src)

    def _prompt(self):
        if self.mode == "raw":
            self.emit(RAW_BANNER + b">")
        else:
            self.emit(self.banner + b"\r\nType \"help()\" for more information.\r\n>>> ")

    def _child_output(self, data):
        """Forward the child's output (\\n cooked to \\r\\n); the second 0x04 ends a job."""
        while data and self.job is not None:
            how = self.job[0]
            j = data.find(b"\x04")
            chunk = data if j < 0 else data[:j]
            if how == "init":
                self.job[2][self.job[1]] += chunk
            else:
                self.emit(chunk.replace(b"\n", b"\r\n"))
            if j < 0:
                return
            data = data[j + 1:]
            self.job[1] += 1
            if how == "raw":
                self.emit(b"\x04")
            if self.job[1] == 2:
                self._job_done()
        if data:
            self.emit(data.replace(b"\n", b"\r\n"))

    def _job_done(self):
        how, _eofs, (out, err) = self.job
        self.job = None
        if how == "init":
            if err:
                sys.stderr.write("mptcp-vboard: the interpreter could not start the board: %s\n"
                                 % bytes(err).decode(errors="replace").strip())
                raise SystemExit(1)
            self.banner = bytes(out)
        if how in ("init", "boot"):
            if self.jobs:
                self._next_job()
                return
            self._prompt()
        elif how == "raw":
            self.emit(b">")
        else:
            self.emit(b">>> ")
        data, self.pending = bytes(self.pending), bytearray()
        if data:
            self.feed(data)

    def _child_died(self):
        how, eofs = (self.job[0], self.job[1]) if self.job else (None, 0)
        if how == "init":
            sys.stderr.write("mptcp-vboard: the interpreter (%s) exited at start-up\n" % self.mpy)
            raise SystemExit(1)
        if how == "raw":
            self.emit(b"\x04" * (2 - eofs))
        self.job = None
        self.soft_reset()

    # -- input from the serial line -----------------------------------------------
    def feed(self, data):
        if self.job is not None:
            if b"\x03" in data and self.child is not None and self.job[0] != "init":
                # (a Ctrl-C while the interpreter starts is dropped: it would kill it
                # before its REPL exists, where a board would just not have listened yet)
                try:
                    os.kill(self.child.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
                data = data.replace(b"\x03", b"")
            self.pending += data
            return
        i = 0
        while i < len(data):
            if self.job is not None:           # a byte started a job: queue the rest
                self.feed(data[i:])
                return
            if self.mode == "paste":
                i = self._paste(data, i)
                continue
            c = data[i]
            i += 1
            if self.mode == "raw":
                self._raw_char(c)
            else:
                self._friendly_char(c)

    def _paste(self, data, i):
        """Raw-paste: take source bytes up to Ctrl-D, granting a window per PASTE_WINDOW."""
        end = len(data)
        for ctl in (3, 4):
            j = data.find(bytes([ctl]), i)
            if 0 <= j < end:
                end = j
        chunk = data[i:end]
        self.line += chunk
        self.paste_got += len(chunk)
        while self.paste_got >= PASTE_WINDOW:
            self.paste_got -= PASTE_WINDOW
            self.emit(b"\x01")
        if end == len(data):
            return end
        self.mode = "raw"
        self.emit(b"\x04")                      # acknowledge the end of the data
        src, self.line = bytes(self.line), bytearray()
        if data[end] == 3:
            self.emit(b"\x04Traceback (most recent call last):\r\nKeyboardInterrupt: \r\n\x04>")
        else:
            self._start("f", src, "raw")
        return end + 1

    def _start(self, kind, src, how):
        self.jobs = [(kind, src, how)]
        self._next_job()

    def _raw_char(self, c):
        if c == 1:                               # Ctrl-A: raw-paste request or raw reset
            if len(self.line) == 2 and self.line[0] == 5:
                ok = self.line[1] == ord("A")
                self.line = bytearray()
                if ok:
                    self.mode = "paste"
                    self.paste_got = 0
                    self.emit(b"R\x01" + PASTE_WINDOW.to_bytes(2, "little"))
                else:
                    self.emit(b"R\x00")
                return
            self.line = bytearray()
            self.emit(RAW_BANNER + b">")
        elif c == 2:                             # Ctrl-B: friendly REPL
            self.line = bytearray()
            self.mode = "friendly"
            self.emit(b"\r\n")
            self._prompt()
        elif c == 3:
            self.line = bytearray()
        elif c == 4:
            self.emit(b"OK")
            if not self.line:
                self.emit(b"\r\n")
                self.soft_reset()
                return
            src, self.line = bytes(self.line), bytearray()
            self._start("f", src, "raw")
        else:
            self.line.append(c)

    def _friendly_char(self, c):
        if c == 1:
            self.line, self.block = bytearray(), []
            self.mode = "raw"
            self.emit(b"\r\n" + RAW_BANNER + b">")
        elif c == 2:
            self.line, self.block = bytearray(), []
            self.emit(b"\r\n")
            self._prompt()
        elif c == 3:
            self.line, self.block = bytearray(), []
            self.emit(b"\r\n>>> ")
        elif c == 4:
            if not self.line and not self.block:
                self.emit(b"\r\n")
                self.soft_reset()
        elif c in (8, 127):
            if self.line:
                self.line = self.line[:-1]
                self.emit(b"\x08 \x08")
        elif c == 13 or c == 10:
            self.emit(b"\r\n")
            line, self.line = bytes(self.line), bytearray()
            if self.block or line.rstrip().endswith(b":"):
                if line.strip():
                    self.block.append(line)
                    self.emit(b"... ")
                    return
                line, self.block = b"\n".join(self.block) + b"\n", []
            if not line.strip():
                self.emit(b">>> ")
                return
            self._start("s", line, "friendly")
        elif c >= 32:
            self.line.append(c)
            self.emit(bytes([c]))

    # -- main loop ----------------------------------------------------------------
    def serve(self, silent=False):
        if silent:
            while True:
                select.select([], [], [], 3600)
        self._spawn()
        while True:
            rd = [self.master] + ([self.child.stdout] if self.child else [])
            wr = [self.master] if self.out else []
            r, w, _ = select.select(rd, wr, [], 1.0)
            if self.child and self.child.stdout in r:
                data = self.child.stdout.read(65536)
                if data:
                    self._child_output(data)
                elif data == b"":
                    self._child_died()
            if self.master in r:
                try:
                    data = os.read(self.master, 65536)
                except (BlockingIOError, OSError):
                    data = b""
                if data:
                    self.feed(data)
            self._flush()

    def close(self):
        self._kill()
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


@contextlib.contextmanager
def running(root, *args):
    """A virtual board on folder `root` (mptcp-vboard ROOT ARGS) as a child process for
    the block: yields its port; the board and its interpreter are stopped at the end,
    even when the block fails (tools and tests that need a board for a while)."""
    env = dict(os.environ)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([here] + [p for p in [env.get("PYTHONPATH")] if p])
    p = subprocess.Popen([sys.executable, "-m", "mptcp_tools.vboard", str(root)] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        port = p.stdout.readline().strip()
        if not port.startswith("/dev/"):
            p.wait(5)
            raise RuntimeError("the virtual board did not start: %s" % (p.stderr.read().strip()
                                                                         or "no port printed"))
        yield port
    finally:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        p.stdout.close()
        p.stderr.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="folder that is the board's filesystem root")
    ap.add_argument("--readonly", action="store_true", help="read-only filesystem (EROFS)")
    ap.add_argument("--full", type=int, metavar="BYTES", help="filesystem capacity in bytes")
    ap.add_argument("--report-free", type=int, metavar="BYTES",
                    help="with --full: os.statvfs reports this much free (over-reporting fs)")
    ap.add_argument("--silent", action="store_true", help="open the port, never answer")
    ap.add_argument("--dev", action="store_true",
                    help="mount the host's /dev at /dev (serial ports, the lab modem's pty)")
    ap.add_argument("--heap", help="MicroPython heap size, e.g. 200k (default: the port's)")
    ap.add_argument("--micropython", help="MicroPython unix port (default: the venv's)")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.root):
        ap.error("no such folder %s: create it first (it becomes the board's /)" % a.root)
    if a.report_free is not None and a.full is None:
        ap.error("--report-free needs --full")
    board = VBoard(a.root, a.micropython, a.readonly, a.full, a.report_free, a.heap, a.dev)

    def stop(_sig, _frm):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, stop)
    print(board.port, flush=True)
    try:
        board.serve(silent=a.silent)
    finally:
        board.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
