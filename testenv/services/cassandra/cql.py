"""CQL probes of the test Cassandra nodes, run by testenv/services/cassandra.sh and
cassandra-cluster.sh in the venv that has the Python cassandra-driver.

    cql.py health  --hosts H:P[,H:P...] [--peers K] [--user U --password P --bootstrap-role]
    cql.py smoke   --hosts H:P --user U --password P --ca CA_PEM
    cql.py cluster-smoke --hosts H:P,H:P,H:P

`health` is one connect and two local queries per host (release_version, system.peers); with
--peers K every host must know K peers, so a cluster counts as up only once gossip has spread.
With --bootstrap-role it also creates the test role (LOGIN, SUPERUSER) through the default
cassandra/cassandra superuser when the test role's login is refused because the role does not
exist yet. Exit status 0 means every check passed; each check prints one line saying what it
proved.
"""

import argparse
import logging
import ssl
import sys
import uuid

from cassandra import AuthenticationFailed, ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.policies import WhiteListRoundRobinPolicy
from cassandra.query import SimpleStatement

TIMEOUT = 3.0
DEFAULT_SUPERUSER = ("cassandra", "cassandra")


def parse_hosts(spec):
    hosts = []
    for item in spec.split(","):
        host, _, port = item.rpartition(":")
        hosts.append((host, int(port)))
    return hosts


def connect(hosts, user=None, password=None, ssl_context=None, metadata=False,
            consistency=ConsistencyLevel.LOCAL_ONE):
    """A session to exactly `hosts` (all on one native port)."""
    port = hosts[0][1]
    addresses = [h for h, _ in hosts]
    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy(addresses),
        request_timeout=10.0 if metadata else TIMEOUT,
        consistency_level=consistency,
    )
    kwargs = {}
    if user is not None:
        kwargs["auth_provider"] = PlainTextAuthProvider(username=user, password=password)
    if ssl_context is not None:
        kwargs["ssl_context"] = ssl_context
        kwargs["ssl_options"] = {"server_hostname": addresses[0]}
    cluster = Cluster(
        contact_points=addresses,
        port=port,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=TIMEOUT,
        control_connection_timeout=TIMEOUT,
        schema_metadata_enabled=metadata,
        token_metadata_enabled=metadata,
        **kwargs,
    )
    try:
        return cluster, cluster.connect()
    except Exception:
        cluster.shutdown()
        raise


def auth_failure(err):
    """The AuthenticationFailed inside a NoHostAvailable, if that is what it is."""
    if isinstance(err, AuthenticationFailed):
        return err
    if isinstance(err, NoHostAvailable):
        for inner in err.errors.values():
            if isinstance(inner, AuthenticationFailed):
                return inner
    return None


def release_version(session):
    return session.execute("SELECT release_version FROM system.local").one().release_version


def bootstrap_role(hosts, user, password):
    cluster, session = connect(hosts, *DEFAULT_SUPERUSER)
    try:
        session.execute(
            "CREATE ROLE IF NOT EXISTS %s WITH PASSWORD = %%s AND LOGIN = true AND SUPERUSER = true"
            % user,
            (password,),
        )
    finally:
        cluster.shutdown()


def cmd_health(args):
    hosts = parse_hosts(args.hosts)
    for host in hosts:
        try:
            cluster, session = connect([host], args.user, args.password)
        except NoHostAvailable as err:
            if not (args.bootstrap_role and auth_failure(err)):
                raise
            # The test role does not exist yet (fresh data dir): create it with the default
            # superuser, which Cassandra itself creates a moment after the node starts.
            bootstrap_role([host], args.user, args.password)
            cluster, session = connect([host], args.user, args.password)
        try:
            version = release_version(session)
            peers = sorted(r.peer for r in session.execute("SELECT peer FROM system.peers"))
            if len(peers) < args.peers:
                sys.exit("%s:%d knows %d peers %s, want %d" % (host[0], host[1], len(peers), peers, args.peers))
            print("%s:%d answers CQL: release_version %s, peers %s" % (host[0], host[1], version, peers))
        finally:
            cluster.shutdown()


def cmd_smoke(args):
    hosts = parse_hosts(args.hosts)
    keyspace = "pvenv_smoke"
    cluster, session = connect(hosts, args.user, args.password, metadata=True)
    try:
        version = release_version(session)
        session.execute(
            "CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}" % keyspace
        )
        session.execute("CREATE TABLE IF NOT EXISTS %s.kv (k text PRIMARY KEY, v text)" % keyspace)
        key = str(uuid.uuid4())
        insert = "INSERT INTO %s.kv (k, v) VALUES (%%s, %%s) IF NOT EXISTS" % keyspace
        first = session.execute(insert, (key, "first")).one()
        second = session.execute(insert, (key, "second")).one()
        if first[0] is not True or second[0] is not False or second.v != "first":
            sys.exit("smoke: INSERT IF NOT EXISTS twice gave %r then %r" % (first, second))
        print("cassandra %s: INSERT ... IF NOT EXISTS -> [applied]=True, again -> [applied]=False "
              "(existing v=%r): lightweight transactions work" % (version, second.v))
    finally:
        cluster.shutdown()

    try:
        cluster, _ = connect(hosts, args.user, args.password + "-wrong")
        cluster.shutdown()
        sys.exit("smoke: login with a wrong password was accepted")
    except NoHostAvailable as err:
        if not auth_failure(err):
            raise
        print("PasswordAuthenticator: user %r with a wrong password -> AuthenticationFailed" % args.user)

    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca)
    cluster, session = connect(hosts, args.user, args.password, ssl_context=ctx)
    try:
        rows = list(session.execute(
            "SELECT username, ssl_enabled, ssl_protocol FROM system_views.clients"))
        tls_rows = [r for r in rows if r.ssl_enabled and r.username == args.user]
        if not tls_rows:
            sys.exit("smoke: no TLS client connection in system_views.clients: %r" % rows)
        print("client TLS: connection verifying the generated CA (%s, hostname %s) -> %s, "
              "server lists it as ssl_enabled" % (args.ca, hosts[0][0], tls_rows[0].ssl_protocol))
    finally:
        cluster.shutdown()

    untrusted = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:
        cluster, _ = connect(hosts, args.user, args.password, ssl_context=untrusted)
        cluster.shutdown()
        sys.exit("smoke: TLS connection without the generated CA was accepted")
    except NoHostAvailable as err:
        if "CERTIFICATE_VERIFY_FAILED" not in str(err):
            raise
        print("client TLS: the same connection trusting only the system CAs -> certificate verify failed")


def cmd_cluster_smoke(args):
    hosts = parse_hosts(args.hosts)
    keyspace = "pvenv_cluster_smoke"
    cluster, session = connect(hosts, metadata=True, consistency=ConsistencyLevel.QUORUM)
    try:
        down = [str(h) for h in cluster.metadata.all_hosts() if not h.is_up]
        seen = sorted(h.endpoint.address for h in cluster.metadata.all_hosts())
        if len(seen) != len(hosts) or down:
            sys.exit("cluster smoke: driver sees nodes %s, down: %s" % (seen, down))
        session.execute(
            "CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 3}" % keyspace
        )
        session.execute("CREATE TABLE IF NOT EXISTS %s.kv (k text PRIMARY KEY, v text)" % keyspace)
        if not cluster.control_connection.wait_for_schema_agreement(wait_time=30):
            sys.exit("cluster smoke: no schema agreement after 30 s")
        key = str(uuid.uuid4())
        session.execute(SimpleStatement(
            "INSERT INTO %s.kv (k, v) VALUES (%%s, %%s)" % keyspace,
            consistency_level=ConsistencyLevel.QUORUM), (key, "quorum"))
        row = session.execute(SimpleStatement(
            "SELECT v FROM %s.kv WHERE k = %%s" % keyspace,
            consistency_level=ConsistencyLevel.QUORUM), (key,)).one()
        if row is None or row.v != "quorum":
            sys.exit("cluster smoke: QUORUM read returned %r" % (row,))
        print("cassandra cluster: nodes %s up; keyspace RF 3: QUORUM write then QUORUM read -> %r"
              % (",".join(seen), row.v))
    finally:
        cluster.shutdown()


def main():
    logging.basicConfig(level=logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["health", "smoke", "cluster-smoke"])
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--ca")
    parser.add_argument("--bootstrap-role", action="store_true")
    parser.add_argument("--peers", type=int, default=0)
    args = parser.parse_args()
    {"health": cmd_health, "smoke": cmd_smoke, "cluster-smoke": cmd_cluster_smoke}[args.command](args)


if __name__ == "__main__":
    main()
