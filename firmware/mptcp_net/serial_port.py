"""The serial line to the modem: one small non-blocking interface, three implementations.

    write(buf) -> n        bytes accepted (may be partial, 0 when the line is full)
    readinto(buf) -> n     bytes read (0 when nothing is waiting); never blocks
    pollable()             object for select.poll (or None: poll by timer)
    set_baud(b), close()

`UartSerial` (machine.UART, RTS/CTS) on boards, `TtySerial` (a tty or the lab's pty) on the
MicroPython unix port and CPython, `PySerial` (pyserial) on CPython hosts. Modules that do
not exist everywhere (machine, serial, termios) are imported lazily.
"""
import sys

_MPY = sys.implementation.name == "micropython"
_VTIME = 5     # Linux termios c_cc indices (MicroPython's termios does not name them)
_VMIN = 6


class SerialBase:
    hup = False          # the other end went away (pty master closed, USB unplugged)
    errors = 0
    rx_bytes = 0
    tx_bytes = 0

    def write(self, buf):
        raise NotImplementedError

    def readinto(self, buf):
        raise NotImplementedError

    def pollable(self):
        return None

    def set_baud(self, baud):
        pass

    def close(self):
        pass


class UartSerial(SerialBase):
    """machine.UART with hardware flow control; buffer sizes come from the board config."""

    def __init__(self, uart_id, baud=115200, tx=None, rx=None, rts=None, cts=None,
                 rxbuf=2048, txbuf=1024, flow=True):
        import machine   # lazily: boards only
        self._machine = machine
        self._id = uart_id
        self._kw = {"bits": 8, "parity": None, "stop": 1, "timeout": 0, "timeout_char": 0,
                    "rxbuf": rxbuf, "txbuf": txbuf}
        if tx is not None:
            self._kw["tx"] = machine.Pin(tx)
        if rx is not None:
            self._kw["rx"] = machine.Pin(rx)
        if flow and rts is not None and cts is not None:
            self._kw["rts"] = machine.Pin(rts)
            self._kw["cts"] = machine.Pin(cts)
            self._kw["flow"] = machine.UART.RTS | machine.UART.CTS
        self.baud = baud
        self.uart = machine.UART(uart_id, baud, **self._kw)
        self._poll = None
        try:
            import select
            self._poll = select.poll()
            self._poll.register(self.uart, select.POLLOUT)
            self._POLLOUT = select.POLLOUT
        except Exception:
            self._poll = None

    def write(self, buf):
        # Only write when the driver's tx ring has room, so a full ring never blocks us.
        if self._poll is not None and not self._poll.poll(0):
            return 0
        try:
            n = self.uart.write(buf)
        except OSError:
            self.errors += 1
            return 0
        if n is None:
            return 0
        self.tx_bytes += n
        return n

    def readinto(self, buf):
        try:
            if not self.uart.any():
                return 0
            n = self.uart.readinto(buf)
        except OSError:
            self.errors += 1
            return 0
        if not n:
            return 0
        self.rx_bytes += n
        return n

    def pollable(self):
        return self.uart

    def set_baud(self, baud):
        self.baud = baud
        self.uart.init(baud, **self._kw)

    def close(self):
        try:
            self.uart.deinit()
        except Exception:
            pass


class TtySerial(SerialBase):
    """A tty or pty path in raw mode with VMIN=0/VTIME=0 so reads never block."""

    WRITE_CHUNK = 256    # MicroPython cannot set O_NONBLOCK: bound how long one write may stall

    def __init__(self, path, baud=None):
        import termios
        self._termios = termios
        self.path = path
        self.f = open(path, "r+b", buffering=0)
        self.fd = self.f.fileno()
        self._poll = None
        try:
            self._raw(baud)
            if not _MPY:
                import os
                os.set_blocking(self.fd, False)
            else:
                import select
                self._poll = select.poll()
                self._poll.register(self.f, select.POLLOUT)
        except Exception:
            self.f.close()
            raise

    def _raw(self, baud):
        t = self._termios
        if hasattr(t, "setraw"):
            t.setraw(self.fd)
        else:   # CPython keeps setraw in tty
            import tty
            tty.setraw(self.fd)
        a = t.tcgetattr(self.fd)
        a[6][_VMIN] = 0
        a[6][_VTIME] = 0
        if baud:
            b = getattr(t, "B%d" % baud, None)
            if b is not None:
                a[4] = b
                a[5] = b
        t.tcsetattr(self.fd, t.TCSANOW, a)

    def write(self, buf):
        if self._poll is not None:
            ev = self._poll.poll(0)
            if not ev:
                return 0
            if ev[0][1] & ~4:    # POLLERR/POLLHUP: nobody on the other side
                self.hup = True
                return 0
            if len(buf) > self.WRITE_CHUNK:
                buf = memoryview(buf)[:self.WRITE_CHUNK]
        try:
            n = self.f.write(buf)
        except OSError as e:
            if e.args and e.args[0] == 11:   # EAGAIN
                return 0
            self.errors += 1
            if e.args and e.args[0] == 5:    # EIO: pty master gone
                self.hup = True
            return 0
        if not n:
            return 0
        self.tx_bytes += n
        return n

    def readinto(self, buf):
        try:
            n = self.f.readinto(buf)
        except OSError as e:
            if e.args and e.args[0] == 11:
                return 0
            self.errors += 1
            if e.args and e.args[0] == 5:
                self.hup = True
            return 0
        if not n:
            return 0
        self.rx_bytes += n
        return n

    def pollable(self):
        return self.f

    def fileno(self):
        return self.fd

    def set_baud(self, baud):
        try:
            self._raw(baud)
        except Exception:
            self.errors += 1

    def close(self):
        try:
            self.f.close()
        except Exception:
            pass


class PySerial(SerialBase):
    """pyserial on a CPython host (e.g. a USB modem on a PC): non-blocking, RTS/CTS."""

    def __init__(self, port, baud=115200, rtscts=True):
        # lazily: CPython hosts only (pyserial; the Pico uses UartSerial)
        import serial  # pyright: ignore[reportMissingImports]
        self.s = serial.Serial(port, baud, timeout=0, write_timeout=0, rtscts=rtscts)

    def write(self, buf):
        try:
            n = self.s.write(buf)
        except Exception:
            self.errors += 1
            return 0
        n = n or 0
        self.tx_bytes += n
        return n

    def readinto(self, buf):
        try:
            w = self.s.in_waiting
            if not w:
                return 0
            data = self.s.read(min(w, len(buf)))
        except Exception:
            self.errors += 1
            self.hup = True
            return 0
        n = len(data)
        buf[:n] = data
        self.rx_bytes += n
        return n

    def pollable(self):
        try:
            return self.s.fileno()
        except Exception:
            return None

    def set_baud(self, baud):
        self.s.baudrate = baud

    def close(self):
        self.s.close()


def open_serial(spec, baud=115200, **kw):
    """Board config helper: int -> UART id; "pyserial:PORT" -> PySerial; a path -> TtySerial."""
    if isinstance(spec, int):
        return UartSerial(spec, baud, **kw)
    if spec.startswith("pyserial:"):
        return PySerial(spec[9:], baud, **kw)
    return TtySerial(spec, baud)
