"""MIB counters: a fixed list of names, values in one preallocated list.

Names follow the kernel's MPTcpExt MIB where one exists, plus our own TCP/IP
ones. The hot path does `counters.v[IDX] += 1` (or `inc(IDX)`) with a const
index; `items()` and `get(name)` are for the trial tools and tests (`get` refuses a
name not in NAMES).
"""
from mptcp.compat import const

NAMES = (
    # MPTCP (kernel MPTcpExt names)
    "MPCapableSYNRX", "MPCapableSYNTX", "MPCapableSYNACKRX", "MPCapableACKRX",
    "MPCapableFallbackACK", "MPCapableFallbackSYNACK", "MPFallbackTokenInit",
    "DSSNotMatching", "DataCsumErr", "InfiniteMapRx", "InfiniteMapTx",
    "MPFailTx", "MPFailRx", "DuplicateData", "OFOQueue", "DSSNoMatchTCP",
    "MPFastcloseTx", "MPFastcloseRx", "MPRstTx", "MPRstRx", "RcvPruned",
    "DataFinRx", "DataFinTx", "MPTCPRetrans",
    # TCP / IP (our own)
    "TcpInSegs", "TcpOutSegs", "TcpRetransSegs", "TcpFastRetrans", "TcpRTOs",
    "TcpInErrs", "TcpInCsumErrors", "TcpInErrsBadOpt", "TcpInErrsOutOfWindow",
    "TcpInErrsBadAck", "TcpInErrsBadMptcp", "TcpInRsts", "TcpOutRsts",
    "TcpActiveOpens", "TcpPassiveOpens", "TcpEstabResets", "TcpAttemptFails",
    "TcpOFODrop", "TcpOFOQueue", "TcpZeroWindowProbes", "TcpDelayedAcks",
    "TcpPartialAcks", "TcpDupAcks", "IpInReceives", "IpInHdrErrors",
    "IpInAddrErrors", "IpInUnknownProtos", "IpOutRequests", "DroppedNoSocket",
    "ChallengeAcks", "ChallengeAcksLimited", "ListenOverflows", "InternalErrors",
    "DSSFallback", "IpInNotV4", "MPJoinSynRx",
    "TcpAckSkipped", "TcpInOldSegs", "TcpRstIgnored",
    # multipath (kernel MPTcpExt names, then our own)
    "MPJoinSynTx",
    "MPJoinSynAckRx",
    "MPJoinSynAckHMacFailure",
    "MPJoinAckRx",
    "MPJoinAckHMacFailure",
    "MPJoinNoTokenFound",
    "MPJoinRejected",
    "SubflowStale",
    "SubflowRecover",
    "RmSubflow",
    "MPTCPReinject",
    "LinkDown",
    "SubflowRecreate",
    "OrphanTimeout",
    "AddAddr",
    "AddAddrDrop",
    "EchoAdd",
    "AddAddrTx",
    "EchoAddTx",
    "RmAddr",
    "RmAddrTx",
    "MPPrioTx",
    "MPPrioRx",
    "MPTCPDupTx",
    "TokenCollision",
)

MPCapableSYNRX = const(0)
MPCapableSYNTX = const(1)
MPCapableSYNACKRX = const(2)
MPCapableACKRX = const(3)
MPCapableFallbackACK = const(4)
MPCapableFallbackSYNACK = const(5)
MPFallbackTokenInit = const(6)
DSSNotMatching = const(7)
DataCsumErr = const(8)
InfiniteMapRx = const(9)
InfiniteMapTx = const(10)
MPFailTx = const(11)
MPFailRx = const(12)
DuplicateData = const(13)
OFOQueue = const(14)
DSSNoMatchTCP = const(15)
MPFastcloseTx = const(16)
MPFastcloseRx = const(17)
MPRstTx = const(18)
MPRstRx = const(19)
RcvPruned = const(20)
DataFinRx = const(21)
DataFinTx = const(22)
MPTCPRetrans = const(23)
TcpInSegs = const(24)
TcpOutSegs = const(25)
TcpRetransSegs = const(26)
TcpFastRetrans = const(27)
TcpRTOs = const(28)
TcpInErrs = const(29)
TcpInCsumErrors = const(30)
TcpInErrsBadOpt = const(31)
TcpInErrsOutOfWindow = const(32)
TcpInErrsBadAck = const(33)
TcpInErrsBadMptcp = const(34)
TcpInRsts = const(35)
TcpOutRsts = const(36)
TcpActiveOpens = const(37)
TcpPassiveOpens = const(38)
TcpEstabResets = const(39)
TcpAttemptFails = const(40)
TcpOFODrop = const(41)
TcpOFOQueue = const(42)
TcpZeroWindowProbes = const(43)
TcpDelayedAcks = const(44)
TcpPartialAcks = const(45)
TcpDupAcks = const(46)
IpInReceives = const(47)
IpInHdrErrors = const(48)
IpInAddrErrors = const(49)
IpInUnknownProtos = const(50)
IpOutRequests = const(51)
DroppedNoSocket = const(52)
ChallengeAcks = const(53)
ChallengeAcksLimited = const(54)
ListenOverflows = const(55)
InternalErrors = const(56)
DSSFallback = const(57)
IpInNotV4 = const(58)
MPJoinSynRx = const(59)
TcpAckSkipped = const(60)    # an out-of-window / bad-ACK answer not sent (rate limit, Linux's TCPACKSkipped*)
TcpInOldSegs = const(61)     # segments entirely below RCV.NXT (duplicates), answered with a dup ACK
TcpRstIgnored = const(62)    # RST in TIME-WAIT or after a completed close: no error (RFC 1337 spirit)
MPJoinSynTx = const(63)    # MP_JOIN SYNs sent (each try)
MPJoinSynAckRx = const(64) # MP_JOIN SYN/ACKs received with a good HMAC
MPJoinSynAckHMacFailure = const(65) # MP_JOIN SYN/ACK with a wrong HMAC: subflow reset (MP_TCPRST)
MPJoinAckRx = const(66)    # MP_JOIN third ACKs received with a good HMAC (passive join established)
MPJoinAckHMacFailure = const(67) # MP_JOIN third ACK with a wrong HMAC: subflow reset (MP_TCPRST)
MPJoinNoTokenFound = const(68) # MP_JOIN SYN with an unknown token: refused (RST + MP_TCPRST)
MPJoinRejected = const(69) # MP_JOIN SYN refused: the connection has its maximum of subflows
SubflowStale = const(70)   # a subflow marked stale (RTOs without progress) while others could carry
SubflowRecover = const(71) # a stale subflow acknowledged new data again
RmSubflow = const(72)      # subflows closed (link down, reset, peer's FIN without DATA_FIN, ...)
MPTCPReinject = const(73)  # segments sent from the reinjection range (another subflow's data)
LinkDown = const(74)       # link-down signals received (Stack.netif_down)
SubflowRecreate = const(75) # joins opened by the path manager to replace a lost subflow
OrphanTimeout = const(76)  # connections ended because no subflow came back within close_timeout
AddAddr = const(77)         # ADD_ADDR received with a good HMAC (and remembered)
AddAddrDrop = const(78)     # ADD_ADDR dropped: wrong HMAC, IPv6, or no slot
EchoAdd = const(79)         # ADD_ADDR echoes received (our announcement arrived)
AddAddrTx = const(80)       # ADD_ADDR sent (each retransmission too)
EchoAddTx = const(81)       # ADD_ADDR echoes sent
RmAddr = const(82)          # REMOVE_ADDR address ids received
RmAddrTx = const(83)        # REMOVE_ADDR sent
MPPrioTx = const(84)        # MP_PRIO sent
MPPrioRx = const(85)        # MP_PRIO received
MPTCPDupTx = const(86)  # copies of small writes sent on other subflows (redundant)
TokenCollision = const(87)  # a new key whose token another connection has: a new key drawn
COUNT = const(88)


class Counters:
    def __init__(self):
        self.v = [0] * COUNT
        self.log = None     # optional callable(str); None costs one test

    def inc(self, idx, n=1):
        self.v[idx] += n

    def get(self, name):
        """Value of counter `name`. An unknown name raises KeyError: a renamed or misspelt
        counter must not read as 0 and make a `== 0` check pass by default."""
        for i in range(COUNT):
            if NAMES[i] == name:
                return self.v[i]
        raise KeyError("unknown counter %r (see mptcp.counters.NAMES)" % (name,))

    def items(self):
        """(name, value) pairs, all of them, in a fixed order."""
        return [(NAMES[i], self.v[i]) for i in range(COUNT)]

    def nonzero(self):
        return [(NAMES[i], self.v[i]) for i in range(COUNT) if self.v[i]]

    def reset(self):
        for i in range(COUNT):
            self.v[i] = 0
