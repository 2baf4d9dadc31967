"""Reassemble TCP streams from a pcap (loopback, ethernet linktype) into files.
Output dir: <out>/<n>_<cport>-<sport>_{c2s,s2c}.bin plus index.txt (conn order by SYN time)."""
import struct, sys, os
pcap, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
data = open(pcap, 'rb').read()
magic, = struct.unpack('<I', data[:4])
assert magic == 0xa1b2c3d4, hex(magic)
linktype, = struct.unpack('<I', data[20:24])
off = 24
conns = {}  # key (client, server) -> dict
order = []
def key_of(a, b):
    return (a, b)
while off < len(data):
    ts, tus, incl, orig = struct.unpack('<IIII', data[off:off+16]); off += 16
    pkt = data[off:off+incl]; off += incl
    if linktype == 1:
        eth_type, = struct.unpack('>H', pkt[12:14]); ip = pkt[14:]
        if eth_type != 0x0800: continue
    elif linktype == 113:
        ip = pkt[16:]
    else:
        raise SystemExit('linktype %d' % linktype)
    ihl = (ip[0] & 15) * 4
    tot, = struct.unpack('>H', ip[2:4])
    if ip[9] != 6: continue
    src = ip[12:16]; dst = ip[16:20]
    tcp = ip[ihl:tot]
    sport, dport, seq, ack = struct.unpack('>HHII', tcp[:12])
    doff = (tcp[12] >> 4) * 4
    flags = tcp[13]
    payload = tcp[doff:]
    t = ts + tus / 1e6
    syn = flags & 2; ackf = flags & 16
    if syn and not ackf:
        k = (sport, dport)
        conns[k] = {'t': t, 'isn': {sport: seq}, 'segs': {sport: {}, dport: {}}}
        order.append(k)
        continue
    if syn and ackf:
        k = (dport, sport)
        if k in conns: conns[k]['isn'][sport] = seq
        continue
    k = (sport, dport) if (sport, dport) in conns else (dport, sport)
    if k not in conns or not payload: continue
    conns[k]['segs'][sport].setdefault(seq, (t, payload))
idx = open(os.path.join(out, 'index.txt'), 'w')
for n, k in enumerate(order):
    c = conns[k]
    for side, name in ((k[0], 'c2s'), (k[1], 's2c')):
        isn = c['isn'].get(side)
        segs = c['segs'][side]
        buf = bytearray()
        if isn is not None:
            nxt = (isn + 1) & 0xffffffff
            for s in sorted(segs, key=lambda s: (s - nxt) & 0xffffffff):
                t, p = segs[s]
                rel = (s - nxt) & 0xffffffff
                if rel > len(buf):
                    print('gap in', k, side, file=sys.stderr); break
                buf[rel:rel+len(p)] = p
        open(os.path.join(out, '%02d_%d-%d_%s.bin' % (n, k[0], k[1], name)), 'wb').write(buf)
    idx.write('%02d t=%.3f client_port=%d server_port=%d c2s=%d s2c=%d\n' % (n, c['t'], k[0], k[1],
              len(open(os.path.join(out, '%02d_%d-%d_c2s.bin' % (n, k[0], k[1])),'rb').read()),
              len(open(os.path.join(out, '%02d_%d-%d_s2c.bin' % (n, k[0], k[1])),'rb').read())))
