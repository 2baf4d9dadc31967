import struct, sys
NAMES={1:'REQUEST',2:'PROPOSAL',3:'ACK',4:'COMMIT',5:'PING',6:'REVALIDATE',7:'SYNC',8:'INFORM',9:'COMMITANDACTIVATE',10:'NEWLEADER',11:'FOLLOWERINFO',12:'UPTODATE',13:'DIFF',14:'TRUNC',15:'SNAP',16:'OBSERVERINFO',17:'LEADERINFO',18:'ACKEPOCH',19:'INFORMANDACTIVATE'}
b=open(sys.argv[1],'rb').read(); o=0
def i32():
    global o; v=struct.unpack('>i',b[o:o+4])[0]; o+=4; return v
def i64():
    global o; v=struct.unpack('>q',b[o:o+8])[0]; o+=8; return v
def buf():
    global o; n=i32()
    if n<0: return None
    v=b[o:o+n]; o+=n; return v
def skip_snapshot():
    global o
    start=o
    n=i32(); sess=[(i64(),i32()) for _ in range(n)]
    m=i32()
    for _ in range(m):
        i64(); k=i32()
        for _ in range(k): i32(); buf(); buf()
    nodes=0
    while True:
        p=buf()
        if p==b'/': break
        buf(); i64(); o_=o; globals()['o']=o+60; nodes+=1
    sig=buf()
    return 'sessions=%r acls=%d nodes=%d sig=%r len=%d'%(sess,m,nodes,sig,o-start)
while o < len(b):
    t=i32(); z=i64(); d=buf(); na=i32(); auth=[]
    for _ in range(max(na,0)): auth.append((buf(),buf()))
    s='%-18s zxid=%#x data=%s auth=%s'%(NAMES.get(t,t), z & 0xffffffffffffffff, None if d is None else (d.hex() if len(d)<=48 else d[:48].hex()+'..(%d)'%len(d)), auth if na>=0 else 'null')
    print(s)
    if t==15: print('   SNAPSHOT', skip_snapshot())
