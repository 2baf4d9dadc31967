/* LD_PRELOAD shim for the nemesis harness's TCP-proxy fallback (proxynet.py).
 *
 * Without network namespaces, a fault-injecting proxy has to own the addresses the ensemble's
 * configuration names (127.0.0.N:port), yet each server binds exactly those. This shim moves
 * the server's listening socket aside: bind() to 127.0.0.N on one of the ports listed in
 * ZKNEM_REBIND_PORTS (comma-separated) binds 127.0.1.N instead, where the proxy forwards.
 * IPv4 and IPv4-mapped IPv6 addresses are handled; every other bind() is untouched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

static int port_listed(unsigned port)
{
    const char *list = getenv("ZKNEM_REBIND_PORTS");
    if (list == NULL)
        return 0;
    while (*list) {
        char *end;
        unsigned long p = strtoul(list, &end, 10);
        if (end == list)
            return 0;
        if (p == port)
            return 1;
        list = *end == ',' ? end + 1 : end;
    }
    return 0;
}

/* 127.0.0.N -> 127.0.1.N, in network byte order; 0 when the address is not 127.0.0.N */
static int moved(unsigned char *a)
{
    if (a[0] != 127 || a[1] != 0 || a[2] != 0)
        return 0;
    a[2] = 1;
    return 1;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    static bind_fn real_bind;
    if (real_bind == NULL)
        real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    if (addr != NULL && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in copy;
        memcpy(&copy, addr, sizeof copy);
        if (port_listed(ntohs(copy.sin_port)) && moved((unsigned char *)&copy.sin_addr))
            return real_bind(fd, (const struct sockaddr *)&copy, sizeof copy);
    } else if (addr != NULL && addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 copy;
        memcpy(&copy, addr, sizeof copy);
        unsigned char *b = copy.sin6_addr.s6_addr;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, mapped, 12) == 0 && port_listed(ntohs(copy.sin6_port)) && moved(b + 12))
            return real_bind(fd, (const struct sockaddr *)&copy, sizeof copy);
    }
    return real_bind(fd, addr, len);
}
