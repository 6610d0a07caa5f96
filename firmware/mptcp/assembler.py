"""Out-of-order bookkeeping with a fixed number of slots (smoltcp's Assembler).

Offsets are relative to the first missing byte (the receiver's rcv_nxt).
`add` records a received range; when it cannot be recorded (all slots used
by other islands) it returns False and the caller drops the segment so the
peer retransmits it. `take_front` returns how many bytes at offset 0 are now
contiguous and shifts the remaining ranges down.
"""


class Assembler:
    def __init__(self, slots=4):
        self.n = 0
        self.cap = slots
        self.start = [0] * slots
        self.end = [0] * slots

    def clear(self):
        self.n = 0

    def add(self, off, size):
        """Record [off, off+size); False if there is no slot for it."""
        if size <= 0:
            return True
        s = self.start
        e = self.end
        lo = off
        hi = off + size
        n = self.n
        # first range that ends at or after lo (touching ranges merge)
        i = 0
        while i < n and e[i] < lo:
            i += 1
        j = i
        while j < n and s[j] <= hi:
            j += 1
        # ranges i..j-1 overlap/touch [lo, hi): merge them into one
        if j > i:
            if s[i] < lo:
                lo = s[i]
            if e[j - 1] > hi:
                hi = e[j - 1]
            s[i] = lo
            e[i] = hi
            k = j
            d = j - i - 1
            while k < n:
                s[k - d] = s[k]
                e[k - d] = e[k]
                k += 1
            self.n = n - d
            return True
        if n >= self.cap:
            return False
        k = n
        while k > i:
            s[k] = s[k - 1]
            e[k] = e[k - 1]
            k -= 1
        s[i] = lo
        e[i] = hi
        self.n = n + 1
        return True

    def front(self):
        """Contiguous bytes available at offset 0 (0 if there is a hole)."""
        if self.n and self.start[0] <= 0:
            return self.end[0]
        return 0

    def take_front(self):
        """Pop the range at offset 0; shift the rest; return its length."""
        k = self.front()
        if k:
            self.shift(k)
        return k

    def shift(self, k):
        """The base advanced by k bytes: drop what is below, rebase the rest."""
        s = self.start
        e = self.end
        n = self.n
        w = 0
        for r in range(n):
            a = s[r] - k
            b = e[r] - k
            if b <= 0:
                continue
            s[w] = a if a > 0 else 0
            e[w] = b
            w += 1
        self.n = w

    def can_add(self, off, size):
        """True if add(off, size) would find room (a free slot or a neighbour)."""
        if self.n < self.cap:
            return True
        for r in range(self.n):
            if self.start[r] <= off + size and off <= self.end[r]:
                return True
        return False

    def covered(self, off, size):
        """True if [off, off+size) is entirely recorded."""
        for r in range(self.n):
            if self.start[r] <= off and off + size <= self.end[r]:
                return True
        return False
