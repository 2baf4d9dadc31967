import struct,sys
b=open(sys.argv[1],'rb').read(); o=0
if sys.argv[2]=='c2s':
    v,=struct.unpack('>q',b[:8]); o=8
    if v<0:
        sid,n=struct.unpack('>qi',b[8:20]); print('INIT',v,sid,b[20:20+n]); o=20+n
    else: print('INIT legacy',v)
while o<len(b):
    n,=struct.unpack('>i',b[o:o+4]); p=b[o+4:o+4+n]; o+=4+n
    st,ld,zx,ee,pe,ver=struct.unpack('>iqqqqi',p[:40])
    cl=struct.unpack('>i',p[40:44])[0] if ver>1 else 0
    print('state=%d leader=%d zxid=%#x ee=%#x pe=%#x v=%d cfg=%r'%(st,ld,zx,ee,pe,ver,p[44:44+cl][-22:]))
