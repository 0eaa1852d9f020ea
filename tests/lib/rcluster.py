"""rcluster: a real Redis Cluster (redis-server, cluster mode) on loopback
for a Stack, for the tests of ltvsync's cluster mode (issue 13).

    with Stack("rc") as st:
        rc = st.start_redis_cluster(masters=3, replicas=1)   # 6 processes
        rc.url                      # redis://127.0.0.1:P1,127.0.0.1:P2,...
        port = rc.master_of(st.prefix + "i:{pipe}:rate")
        rc.kill_master(port)        # SIGKILL
        fo = rc.wait_failover(port, timeout=20)   # fo.new_port, fo.ok_s

Every node runs on random free ports (client and cluster bus, both from
ltharness.free_port) without persistence, node timeout 2 s,
cluster-replica-validity-factor 0 (a replica always stands for election,
however long its link was down) and repl-diskless-sync-delay 0 (a replica's
first sync starts at once, not 5 s later), and is a Proc of the Stack: killed on
close, its log in the Stack's temp dir as redis-cluster-PORT.N.log. The
cluster is made by `redis-cli --cluster create` and waited for until every
node reports cluster_state:ok, every node sees the same masters covering
all 16384 slots and every replica's replication link is up (so a failover
has an in-sync replica to promote).

The key names of ltvsync's two layouts (common/lt_rkeys.h) are mirrored by
integ_key() and global_key() below.
"""
import collections
import signal
import subprocess
import time

from ltharness import HarnessError, free_port, wait_until

SLOTS = 16384

Failover = collections.namedtuple("Failover", "old_port new_port fail_s ok_s")
Failover.__doc__ = """wait_failover's answer: the promoted replica's port,
seconds from the kill until a surviving node flagged the old master as
failed (fail_s) and until every surviving node agreed on the new owner of
its slots with cluster_state:ok (ok_s)."""

Node = collections.namedtuple("Node", "id port flags master_id link slots")


def integ_key(prefix, integ_id, what, cluster):
    """P i:ID:WHAT (one Redis) or P i:{ID}:WHAT (a cluster): lt_rkey_integ."""
    return "%si:%s:%s" % (prefix, "{%s}" % integ_id if cluster else integ_id, what)


def global_key(prefix, what, cluster):
    """P WHAT (one Redis) or P {g}:WHAT (a cluster): lt_rkey_global."""
    return "%s%s%s" % (prefix, "{g}:" if cluster else "", what)


def parse_nodes(text):
    """CLUSTER NODES -> [Node] (slots: a set of slot numbers; importing and
    migrating entries are ignored)."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 8:
            continue
        addr = f[1].split("@")[0]
        port = int(addr.rsplit(":", 1)[1]) if addr.rsplit(":", 1)[1] else 0
        slots = set()
        for s in f[8:]:
            if s.startswith("["):
                continue
            a, _, b = s.partition("-")
            slots.update(range(int(a), int(b or a) + 1))
        out.append(Node(f[0], port, set(f[2].split(",")), None if f[3] == "-" else f[3],
                        f[7], slots))
    return out


class RedisCluster:
    """masters x (1 + replicas) redis-server nodes of one cluster; see the
    module doc. Not redis.cluster.RedisCluster: .client() returns that."""

    def __init__(self, st, masters=3, replicas=1, password=None, node_timeout_ms=2000,
                 timeout=30.0):
        if masters < 3:
            raise HarnessError("redis-cli --cluster create needs at least 3 masters")
        self.st, self.password = st, password
        self.node_timeout_ms = node_timeout_ms
        self.n_masters, self.n_replicas = masters, replicas
        self.procs = {}            # port -> Proc
        self.killed = {}           # port -> (monotonic time, slots it owned)
        self._clients = {}         # port -> redis.Redis
        t0 = time.monotonic()
        for _ in range(masters * (1 + replicas)):
            self._start_node(free_port(), free_port())
        for port, p in self.procs.items():
            wait_until(lambda: p.check_alive() or self.node(port).ping(), 10,
                       "redis-server (cluster node) on port %d" % port)
        cmd = ["redis-cli"] + self._auth_args() + ["--cluster", "create"] + \
            ["127.0.0.1:%d" % port for port in self.procs] + \
            ["--cluster-replicas", str(replicas), "--cluster-yes"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        with open(st.path("redis-cluster-create.log"), "w") as f:
            f.write(" ".join(cmd) + "\n" + r.stdout + r.stderr)
        if r.returncode:
            raise HarnessError("redis-cli --cluster create: exit %d\n%s%s"
                               % (r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
        wait_until(self._settled, timeout, "the Redis Cluster to settle (state ok, "
                   "every slot covered, every replica linked)", interval=0.05)
        self.startup_s = time.monotonic() - t0
        # A seed list of every node, in start order; ltvsync finds the rest.
        self.url = "redis://%s%s" % (":%s@" % password if password else "",
                                     ",".join("127.0.0.1:%d" % p for p in self.procs))

    # -- processes -----------------------------------------------------

    def _auth_args(self):
        return ["-a", self.password, "--no-auth-warning"] if self.password else []

    def _start_node(self, port, bus_port):
        argv = ["redis-server", "--port", port, "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-port", bus_port,
                "--cluster-config-file", self.st.path("nodes-%d.conf" % port),
                "--cluster-node-timeout", self.node_timeout_ms,
                "--cluster-replica-validity-factor", "0",
                # Replicas sync at once (the default waits 5 s for more of them).
                "--repl-diskless-sync-delay", "0",
                "--save", "", "--appendonly", "no", "--dir", self.st.tmp]
        if self.password:
            argv += ["--requirepass", self.password, "--masterauth", self.password]
        p = self.st.start("redis-cluster-%d" % port, argv)
        p.port, p.bus_port, p.password = port, bus_port, self.password
        self.procs[port] = p
        return p

    def live_ports(self):
        return [port for port, p in self.procs.items() if p.alive()]

    # What a single Redis's Proc has and a cluster has not: refuse clearly
    # (a test written for one Redis must not poke one node by accident).
    @property
    def port(self):
        raise HarnessError("a Redis Cluster has no single port: use .masters(), .master_of(key)")

    @property
    def popen(self):
        raise HarnessError("a Redis Cluster is not one process: use .procs, .kill_master(port)")

    # -- clients -------------------------------------------------------

    def node(self, port):
        """A plain redis.Redis on one node (no redirection), kept per port."""
        import redis
        c = self._clients.get(port)
        if c is None:
            c = self._clients[port] = redis.Redis(
                host="127.0.0.1", port=port, password=self.password, socket_timeout=5,
                socket_connect_timeout=5)
        return c

    def client(self):
        """redis.cluster.RedisCluster (python3-redis 4.1+) seeded with the
        live nodes: routes by slot, follows MOVED/ASK."""
        from redis.cluster import ClusterNode, RedisCluster as PyCluster
        return PyCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in self.live_ports()],
                         password=self.password, socket_timeout=5)

    def cmd(self, port, *args):
        """One command on one node, the raw reply (no redis-py callback)."""
        return self.node(port).execute_command(*args)

    def info(self, port, section):
        """CLUSTER INFO / INFO replication of a node as {field: str}."""
        raw = self.cmd(port, "CLUSTER", "INFO") if section == "cluster" else \
            self.cmd(port, "INFO", section)
        if isinstance(raw, dict):
            return {k: str(v) for k, v in raw.items()}
        out = {}
        for line in raw.decode().splitlines():
            k, sep, v = line.partition(":")
            if sep:
                out[k.strip()] = v.strip()
        return out

    def nodes(self, port=None):
        """CLUSTER NODES as seen by port (default: the first live node)."""
        port = port or self.live_ports()[0]
        return parse_nodes(self.cmd(port, "CLUSTER", "NODES").decode())

    # -- the slot map --------------------------------------------------

    def keyslot(self, key):
        return int(self.cmd(self.live_ports()[0], "CLUSTER", "KEYSLOT", key))

    def masters(self, port=None):
        """Ports of the masters that serve slots and are not flagged failed,
        in the view of port (default: the first live node), sorted."""
        return sorted(n.port for n in self.nodes(port) if "master" in n.flags
                      and not {"fail", "fail?"} & n.flags and n.slots)

    def slot_owner(self, slot, port=None):
        for n in self.nodes(port):
            if slot in n.slots and "master" in n.flags and "fail" not in n.flags:
                return n.port
        raise HarnessError("slot %d has no master in the view of node %s" % (slot, port))

    def master_of(self, key):
        """Port of the master serving key's slot (CLUSTER KEYSLOT, CLUSTER NODES)."""
        return self.slot_owner(self.keyslot(key))

    def scan(self, match="*"):
        """Every key matching match on every master (SCAN on each node)."""
        out = []
        for port in self.masters():
            out += [k.decode() for k in self.node(port).scan_iter(match=match, count=1000)]
        return out

    # -- health and failover -------------------------------------------

    def _settled(self):
        """Every live node: cluster_state:ok, and the same masters owning all
        slots exactly once; every live replica's link up."""
        views = []
        for port in self.live_ports():
            self.procs[port].check_alive()
            ci = self.info(port, "cluster")
            if ci.get("cluster_state") != "ok" or ci.get("cluster_slots_ok") != str(SLOTS):
                return False
            ns = self.nodes(port)
            owners = {}
            for n in ns:
                if "master" in n.flags and not {"fail", "fail?"} & n.flags:
                    for s in n.slots:
                        if s in owners:
                            return False
                        owners[s] = n.port
            if len(owners) != SLOTS:
                return False
            live = set(self.live_ports())
            roles = {n.port: ("master" if "master" in n.flags else "replica")
                     for n in ns if n.port in live}
            views.append((owners, roles))
            me = next(n for n in ns if "myself" in n.flags)
            if "slave" in me.flags and self.info(port, "replication").get(
                    "master_link_status") != "up":
                return False
        if not views or any(v != views[0] for v in views[1:]):
            return False
        owners, roles = views[0]
        if not self.killed:
            # Freshly made: N masters, N * R replicas, as every node sees it.
            n_master = sum(1 for r in roles.values() if r == "master")
            if n_master != self.n_masters or len(roles) != len(self.procs):
                return False
        return True

    def wait_ok(self, timeout=30.0):
        wait_until(self._settled, timeout, "the Redis Cluster to settle", interval=0.05)

    def kill_master(self, port):
        """SIGKILL a master; returns the slots it served."""
        if port not in self.masters():
            raise HarnessError("port %d is not a serving master: %s" % (port, self.masters()))
        slots = next(n.slots for n in self.nodes(port) if "myself" in n.flags)
        p = self.procs[port]
        p.popen.send_signal(signal.SIGKILL)
        p.popen.wait(10)
        self.killed[port] = (time.monotonic(), slots)
        return slots

    def wait_failover(self, old_port, timeout=30.0, on_fail=None):
        """Waits until a surviving node flags old_port failed (on_fail() is
        called then, once), then until one former replica serves every slot
        old_port served and every surviving node says cluster_state:ok and
        agrees (the _settled view). Returns a Failover."""
        t_kill, slots = self.killed[old_port]
        fail_s = [None]

        def flagged():
            for port in self.live_ports():
                n = next((n for n in self.nodes(port) if n.port == old_port), None)
                if n is not None and "fail" in n.flags:
                    return True
            return False

        def promoted():
            if fail_s[0] is None and flagged():
                fail_s[0] = time.monotonic() - t_kill
                if on_fail:
                    on_fail()
            if fail_s[0] is None or not self._settled():
                return None
            owner = {}
            for n in self.nodes():
                if "master" in n.flags and "fail" not in n.flags:
                    owner.update(dict.fromkeys(n.slots, n.port))
            news = {owner.get(s) for s in slots}
            new = news.pop() if len(news) == 1 else None
            return new if new not in (None, old_port) else None
        new = wait_until(promoted, timeout, "a replica of %d promoted, the cluster ok"
                         % old_port, interval=0.05)
        return Failover(old_port, new, fail_s[0], time.monotonic() - t_kill)

    def describe(self):
        """One line per node: port, role, slots as ranges (for the logs)."""
        out = []
        for n in sorted(self.nodes(), key=lambda n: n.port):
            role = "master" if "master" in n.flags else "replica"
            if "fail" in n.flags:
                role += ",fail"
            rng, s = [], sorted(n.slots)
            for x in s:
                if rng and rng[-1][1] == x - 1:
                    rng[-1][1] = x
                else:
                    rng.append([x, x])
            out.append("%d %s %s" % (n.port, role, " ".join(
                "%d-%d" % (a, b) if a != b else str(a) for a, b in rng)))
        return "\n".join(out)
