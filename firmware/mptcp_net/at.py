"""AT command engine, sans-IO: bytes from the modem and `now` (a tick) in, command bytes out.

One command is outstanding at a time. Lines are collected until a final result code or
the command's timeout; unsolicited result codes (URCs) go to a handler. Modem output is
untrusted: junk, binary noise and overlong lines are counted and dropped, never raised.

After `CONNECT` the engine stops parsing (the line now carries PPP); bytes that arrived
behind the CONNECT line in the same read are kept in `leftover` for the PPP side.
"""
from mptcp import ticks
from mptcp.compat import const

_CR = const(13)
_LF = const(10)

# final result codes (the `final` attribute after a command ends)
OK = "OK"
ERROR = "ERROR"
CME_ERROR = "+CME ERROR"
CMS_ERROR = "+CMS ERROR"
NO_CARRIER = "NO CARRIER"
CONNECT = "CONNECT"
BUSY = "BUSY"
NO_DIALTONE = "NO DIALTONE"
NO_ANSWER = "NO ANSWER"
TIMEOUT = "TIMEOUT"        # ours: no final result before the deadline

_FINALS_EXACT = (OK, ERROR, NO_CARRIER, BUSY, NO_DIALTONE, NO_ANSWER)

# line prefixes that are URCs when they do not answer the pending command
URC_PREFIXES = ("+CEREG:", "+CREG:", "+CGREG:", "RING", "NO CARRIER", "RDY", "+CPIN:",
                "POWERED DOWN", "NORMAL POWER DOWN", "+CFUN:", "SMS DONE", "PB DONE",
                "+QIND:", "+CPSI:", "+CGEV:", "+PPPD:", "+CMTI:", "+CUSD:")


def _printable(buf, n):
    for i in range(n):
        c = buf[i]
        if c < 32 or c > 126:
            return False
    return True


class AtEngine:
    """Command/response state; see module docstring. Counters are plain attributes."""

    def __init__(self, on_urc=None, max_line=256):
        self.on_urc = on_urc          # called as on_urc(line_str)
        self._line = bytearray(max_line)
        self._n = 0
        self._overflow = False
        self._out = b""
        self.cmd = None               # the pending command (str) or None
        self._prefix = None           # info-line prefix the pending command expects
        self.deadline = -1
        self.lines = []               # info lines of the current/last command
        self.final = None             # final result of the last finished command
        self.code = None              # +CME/+CMS error number or CONNECT rate (int or None)
        self.done = False             # True once the last command has a final result
        self.data_mode = False        # CONNECT seen: stop parsing
        self.leftover = b""
        # counters
        self.commands = 0
        self.timeouts = 0
        self.errors = 0
        self.cme_errors = 0
        self.urcs = 0
        self.garbage_lines = 0
        self.overlong_lines = 0
        self.stray_lines = 0

    # --- commands ----------------------------------------------------------------------------

    def busy(self):
        return self.cmd is not None

    def send(self, cmd, now, timeout_ms=1000):
        """Queue `cmd` (without CR) for the modem; False if another command is pending."""
        if self.cmd is not None:
            return False
        self.cmd = cmd
        p = None
        if cmd.startswith("AT+") or cmd.startswith("at+"):
            i = 2
            while i < len(cmd) and cmd[i] not in "?=":
                i += 1
            p = cmd[2:i].upper() + ":"
        self._prefix = p
        self.deadline = ticks.add(now, timeout_ms)
        self.lines = []
        self.final = None
        self.code = None
        self.done = False
        self.data_mode = False
        self.leftover = b""
        self._out += cmd.encode() + b"\r"
        self.commands += 1
        return True

    def send_raw(self, data):
        """Bytes to write with no command semantics (the `+++` escape)."""
        self._out += data

    def data_to_send(self):
        """Bytes the caller must write to the modem (and then drop)."""
        out = self._out
        self._out = b""
        return out

    def unsend(self, data):
        """Put back bytes the serial port did not accept (partial write)."""
        self._out = data + self._out

    def cancel(self):
        self.cmd = None
        self._prefix = None
        self.deadline = -1

    def reset_parser(self):
        """Forget a partial line (e.g. when leaving data mode)."""
        self._n = 0
        self._overflow = False
        self.data_mode = False
        self.leftover = b""

    def poll(self, now):
        """Run the command timeout; returns True if the pending command just timed out."""
        if self.cmd is not None and ticks.due(now, self.deadline):
            self.timeouts += 1
            self._finish(TIMEOUT, None)
            return True
        return False

    def next_deadline(self):
        return self.deadline if self.cmd is not None else -1

    # --- input -------------------------------------------------------------------------------

    def feed(self, data, n=-1, now=0):
        """Consume n bytes of modem output (all of `data` if n < 0)."""
        if n < 0:
            n = len(data)
        if self.data_mode:
            self.leftover += bytes(data[:n])
            return
        line = self._line
        cap = len(line)
        i = 0
        while i < n:
            c = data[i]
            i += 1
            if c == _CR or c == _LF:
                if self._overflow:
                    self._overflow = False
                    self._n = 0
                    continue
                if self._n:
                    ln = self._n
                    self._n = 0
                    self._line_done(ln)
                    if self.data_mode:
                        # skip the LF of CONNECT's CRLF; the rest belongs to PPP
                        if i < n and data[i] == _LF:
                            i += 1
                        if i < n:
                            self.leftover += bytes(data[i:n])
                        return
                continue
            if self._overflow:
                continue
            if self._n >= cap:
                self._overflow = True
                self.overlong_lines += 1
                continue
            line[self._n] = c
            self._n += 1

    def _line_done(self, ln):
        buf = self._line
        if not _printable(buf, ln):
            self.garbage_lines += 1
            return
        s = bytes(buf[:ln]).decode().strip()
        if not s:
            return
        cmd = self.cmd
        if cmd is not None:
            if s == cmd or s == cmd.strip():
                return            # echo (before ATE0)
            if s in _FINALS_EXACT:
                if s == ERROR:
                    self.errors += 1
                self._finish(s, None)
                return
            if s.startswith("+CME ERROR:") or s.startswith("+CMS ERROR:"):
                self.cme_errors += 1
                self._finish(s[:10], _int_after(s, s.index(":") + 1))
                return
            if s.startswith(CONNECT):
                rate = _int_after(s, 7) if len(s) > 7 else None
                self._finish(CONNECT, rate)
                self.data_mode = True
                return
            if self._prefix is not None and s.startswith(self._prefix):
                self.lines.append(s)
                return
            if self._is_urc(s):
                self._urc(s)
                return
            if s[0] == "+" and self._prefix is not None:
                self.stray_lines += 1     # a "+XXX:" line that answers something else
                return
            self.lines.append(s)      # bare info text (ATI, AT+CGMI, ...)
            return
        if self._is_urc(s):
            self._urc(s)
        else:
            self.stray_lines += 1       # e.g. a late OK after a timeout, or the OK to +++

    def _is_urc(self, s):
        for p in URC_PREFIXES:
            if s.startswith(p):
                return True
        return False

    def _urc(self, s):
        self.urcs += 1
        h = self.on_urc
        if h is not None:
            try:
                h(s)
            except Exception:     # a handler bug must not kill the engine
                pass

    def _finish(self, final, code):
        self.final = final
        self.code = code
        self.done = True
        self.cmd = None
        self._prefix = None
        self.deadline = -1


def _int_after(s, i):
    """The decimal integer at s[i:] (spaces skipped), or None."""
    n = len(s)
    while i < n and s[i] == " ":
        i += 1
    j = i
    while j < n and "0" <= s[j] <= "9":
        j += 1
    if j == i:
        return None
    return int(s[i:j])


def parse_ints(line):
    """'+CEREG: 0,1,"1A2B",...' -> the comma-separated ints after ':' (None where not an int)."""
    k = line.find(":")
    body = line[k + 1:] if k >= 0 else line
    out = []
    for part in body.split(","):
        part = part.strip()
        neg = part.startswith("-")
        digits = part[1:] if neg else part
        if digits and digits.isdigit():
            v = int(digits)
            out.append(-v if neg else v)
        else:
            out.append(None)
    return out
