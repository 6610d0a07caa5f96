"""A board's console (raw REPL over a serial port): run code there and stream what it prints.

Used by mptcp-trial to drive the trial agent on a board (real, or the virtual board of
mptcp-vboard): the agent's events are JSON lines on the console, read as they come. Our
own small client rather than mpremote because the trial needs each line when it is printed
(the schedule starts at the agent's `start` event), a deadline that interrupts the board
(Ctrl-C) instead of leaving it running, and the board's traceback apart from its output.
The protocol is MicroPython's raw REPL: Ctrl-A enters it (banner, '>'), the code ends with
Ctrl-D, the board answers 'OK', then output, 0x04, error output, 0x04, '>'; Ctrl-D at an
empty prompt is a soft reset (a fresh interpreter and heap).
"""
import time

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
CHUNK = 256                 # code is written in pieces a small board's input buffer takes


class ConsoleError(Exception):
    """The board did not answer as a MicroPython raw REPL: one line for the user."""


class Console:
    def __init__(self, port, baud=115200, timeout=10.0):
        import serial
        self.port = port
        self.timeout = timeout
        self.buf = bytearray()
        try:
            self.s = serial.Serial(port, baud, timeout=0.05)
        except (serial.SerialException, OSError) as e:
            raise ConsoleError("cannot open %s: %s (check --port; no other program may hold "
                               "it, e.g. mpremote or a terminal)" % (port, e)) from None

    def close(self):
        try:
            self.s.write(b"\x02")           # back to the friendly REPL, as we found it
        except Exception:
            pass
        self.s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self):
        n = self.s.in_waiting
        data = self.s.read(n if n else 1)
        self.buf += data
        return data

    def _until(self, marker, timeout, what):
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            if time.monotonic() > deadline:
                raise ConsoleError("the board on %s did not answer within %.0f s (%s); got %r: "
                                   "is MicroPython running there and idle?"
                                   % (self.port, timeout, what, bytes(self.buf[-80:])))
            self._fill()
        i = self.buf.index(marker) + len(marker)
        out = bytes(self.buf[:i])
        del self.buf[:i]
        return out

    def enter_raw(self, soft_reset=True):
        """Interrupt what runs, enter the raw REPL; with soft_reset a fresh interpreter."""
        self.s.write(b"\r\x03")
        time.sleep(0.1)
        self.s.write(b"\x03")
        time.sleep(0.1)
        self.s.reset_input_buffer()
        self.buf.clear()
        self.s.write(b"\r\x01")
        self._until(RAW_BANNER + b">", self.timeout, "entering the raw REPL")
        if soft_reset:
            self.s.write(b"\x04")
            self._until(b"soft reboot\r\n", self.timeout, "the soft reset")
            self._until(RAW_BANNER, self.timeout, "the raw REPL after the soft reset")
        else:
            self.buf[:0] = b">"             # the prompt _exec looks for

    def run(self, code, on_line, timeout):
        """Run `code`; call on_line(str) for each line it prints, as it prints it. Returns
        the board's error output (a traceback; "" when none). On the deadline the board is
        interrupted (Ctrl-C) and ConsoleError raised."""
        self._until(b">", self.timeout, "the raw REPL prompt")
        data = code.encode() if isinstance(code, str) else code
        for i in range(0, len(data), CHUNK):
            self.s.write(data[i:i + CHUNK])
            time.sleep(0.01)
        self.s.write(b"\x04")
        self._until(b"OK", self.timeout, "accepting the code")
        deadline = time.monotonic() + timeout
        line = bytearray()
        while True:
            if time.monotonic() > deadline:
                self.interrupt()
                raise ConsoleError("the code on the board did not end within %.0f s: "
                                   "interrupted" % timeout)
            if not self.buf:
                self._fill()
                continue
            j = self.buf.find(b"\x04")
            chunk = bytes(self.buf if j < 0 else self.buf[:j])
            del self.buf[:len(chunk) if j < 0 else j + 1]
            line += chunk
            while b"\n" in line:
                k = line.index(b"\n")
                on_line(bytes(line[:k]).decode(errors="replace").rstrip("\r"))
                del line[:k + 1]
            if j >= 0:
                break
        if line:
            on_line(bytes(line).decode(errors="replace").rstrip("\r"))
        err = self._until(b"\x04", self.timeout, "the error output")[:-1]
        return err.decode(errors="replace").replace("\r\n", "\n").strip()

    def interrupt(self):
        """Ctrl-C the running code and wait (briefly) for the raw REPL's two 0x04."""
        self.s.write(b"\x03")
        try:
            self._until(b"\x04", 5, "the interrupt")
            self._until(b"\x04", 5, "the interrupt")
        except ConsoleError:
            pass


def app_code(module, args):
    """Board code that runs a device app's main(args) (mptcp_apps.trial, mptcp_apps.perf) after a
    collection, and prints its exit code on a tagged line."""
    return ("import gc\ngc.collect()\nfrom %s import main as _m\n_rc = _m(%r)\n"
            "print('MPTCP-APP-RC', _rc)\n" % (module, list(args)))


def app_rc(line):
    """The exit code from app_code's tagged line, or None for any other line."""
    if line.startswith("MPTCP-APP-RC "):
        try:
            return int(line.split()[1])
        except ValueError:
            return None
    return None
