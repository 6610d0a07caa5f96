"""Virtual board, MicroPython side: runs inside the unix port, started by vboard.py.

Mounts the board's folder as "/" (read-only, or with a capacity, as a real flash
filesystem would be), then executes the code vboard.py hands it: one job per request
on stdin ("<kind> <length>\\n" + source), each answered on stdout with the raw REPL's
framing: output, 0x04, error output, 0x04. vboard.py owns the serial-line protocol.

    micropython vboard_agent.py ROOT [--readonly] [--full BYTES] [--report-free BYTES] [--dev]

--dev also mounts the host's /dev at /dev: the board's serial ports (the lab modem
emulator's pty, its LTE UART) are then reachable, as on a unix board.
"""
import io
import os
import sys
import vfs

_BLOCK = 512
_ENOSPC = 28                 # errno values (MicroPython's errno module lacks EROFS)
_EROFS = 30


def _walk_size(fs, path):
    """Bytes used under path on fs (files only): the capacity check's 'used'."""
    n = 0
    for ent in fs.ilistdir(path):
        p = path.rstrip("/") + "/" + ent[0]
        if ent[1] & 0x4000:
            n += _walk_size(fs, p)
        else:
            n += fs.stat(p)[6]
    return n


class _CapFile:
    """A file opened for writing on a CapFS: a write past the capacity writes what
    fits and raises ENOSPC, as a full flash filesystem does."""

    def __init__(self, fs, f, base):
        self._fs = fs
        self._f = f
        self._base = base
        self._n = 0

    def write(self, buf):
        room = self._fs.capacity - self._base - self._n
        if len(buf) > room:
            if room > 0:
                self._f.write(buf[:room])
                self._n += room
            raise OSError(_ENOSPC)
        n = self._f.write(buf)
        self._n += n
        return n

    def close(self):
        self._f.close()

    def flush(self):
        self._f.flush()

    def seek(self, *a):
        return self._f.seek(*a)

    def tell(self):
        return self._f.tell()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class CapFS:
    """The board folder (a VfsPosix) as a board's filesystem: ilistdir reports sizes;
    with a capacity in bytes, statvfs reports it (or report_free, as a filesystem that
    over-reports its free space does) and writes past it fail with ENOSPC."""

    def __init__(self, inner, capacity, report_free=None):
        self.i = inner
        self.capacity = capacity
        self.report_free = report_free
        self.ro = False

    def mount(self, readonly, mkfs):
        self.ro = readonly

    def _w(self):
        if self.ro:
            raise OSError(_EROFS)

    def umount(self):
        pass

    def open(self, path, mode):
        if "r" in mode and "+" not in mode:
            return self.i.open(path, mode)
        self._w()
        if self.capacity is None:
            return self.i.open(path, mode)
        used = _walk_size(self.i, "/")
        try:
            old = self.i.stat(path)[6]
        except OSError:
            old = 0
        if "w" in mode:
            used -= old
        return _CapFile(self, self.i.open(path, mode), used)

    def statvfs(self, path):
        if self.capacity is None:
            return self.i.statvfs(path)
        used = _walk_size(self.i, "/")
        free = self.capacity - used if self.report_free is None else self.report_free
        free = max(0, free) // _BLOCK
        return (_BLOCK, _BLOCK, self.capacity // _BLOCK, free, free, 0, 0, 0, 0, 255)

    def ilistdir(self, path):
        base = path.rstrip("/") + "/"
        for ent in self.i.ilistdir(path):
            size = 0 if ent[1] & 0x4000 else self.i.stat(base + ent[0])[6]
            yield (ent[0], ent[1], 0, size)

    def stat(self, path):
        return self.i.stat(path)

    def mkdir(self, path):
        self._w()
        return self.i.mkdir(path)

    def rmdir(self, path):
        self._w()
        return self.i.rmdir(path)

    def remove(self, path):
        self._w()
        return self.i.remove(path)

    def rename(self, old, new):
        self._w()
        return self.i.rename(old, new)

    def chdir(self, path):
        return self.i.chdir(path)

    def getcwd(self):
        return self.i.getcwd()


def _mount(argv):
    root = argv[1]
    readonly = "--readonly" in argv
    full = report = None
    if "--full" in argv:
        full = int(argv[argv.index("--full") + 1])
    if "--report-free" in argv:
        report = int(argv[argv.index("--report-free") + 1])
    vfs.umount("/")
    vfs.mount(CapFS(vfs.VfsPosix(root), full, report), "/", readonly=readonly)
    if "--dev" in argv:
        vfs.mount(vfs.VfsPosix("/dev"), "/dev")
    os.chdir("/")
    # A board's import path: the filesystem root, frozen modules, /lib (not the host's).
    sys.path[:] = ["", ".frozen", "/lib"]


def _read_exact(inp, n):
    buf = b""
    while len(buf) < n:
        chunk = inp.read(n - len(buf))
        if not chunk:
            raise SystemExit(0)
        buf += chunk
    return buf


def _run(kind, src, g, out):
    """One job: output, 0x04, traceback (if any), 0x04 (the raw REPL's framing)."""
    err = None
    try:
        if kind == "p":                      # a file on the board (boot.py, main.py)
            path = src.decode()
            try:
                os.stat(path)
            except OSError:
                path = None
            if path:
                with open(path) as f:
                    src = f.read()
                exec(compile(src, path, "exec"), g)
        elif kind == "s":                    # a friendly-REPL line: echo expression values
            exec(compile(src, "<stdin>", "single"), g)
        else:
            exec(compile(src, "<stdin>", "exec"), g)
    except BaseException as e:  # noqa: B036 - a board reports every exception, SystemExit too
        err = e
    out.write(b"\x04")
    if err is not None:
        buf = io.StringIO()
        sys.print_exception(err, buf)
        for line in buf.getvalue().split("\n"):
            if line and "vboard_agent" not in line:  # the agent's own frame: not the board's
                sys.stdout.write(line + "\n")
    out.write(b"\x04")


def main(argv):
    out = sys.stdout.buffer
    inp = sys.stdin.buffer
    try:
        _mount(argv)
        v = sys.version.split("MicroPython ")[-1]
        out.write(("MicroPython %s; %s (mptcp virtual board)" % (v, sys.implementation._machine)).encode())
        out.write(b"\x04\x04")
    except Exception as e:
        out.write(b"\x04")
        sys.print_exception(e, sys.stdout)
        out.write(b"\x04")
        return
    g = {"__name__": "__main__"}
    while True:
        try:
            hdr = inp.readline()
            if not hdr:
                return
            kind, n = hdr.split()
            src = _read_exact(inp, int(n))
        except KeyboardInterrupt:            # a Ctrl-C that arrived after its job ended
            continue
        _run(kind.decode(), src, g, out)


main(sys.argv)
