#!/usr/bin/env bash
# Apache Cassandra 5.0 (CQL with lightweight transactions) for the Scylla backend's tests: the
# cassandra-all jar and its dependencies from Maven Central, run as CassandraDaemon on JDK 17.
# One node on 127.0.0.1:9042 with PasswordAuthenticator (role pinvault/pinvault) and client TLS
# on the same port (plaintext still accepted), certificates generated at each start.
# Sourced by testenv/pvenv; testenv/services/cassandra-cluster.sh reuses the install and the
# helpers below. See testenv/services/cassandra/NOTES.md.

# The newest 5.0.x Maven Central serves (2026-11). cassandra-driver: the Python driver of the
# health probe and the smoke test; PyPI has a manylinux wheel of it for CPython 3.11 (on a Python
# without one, pip builds the pure-Python variant: CASS_DRIVER_NO_EXTENSIONS below).
CASSANDRA_VERSION="5.0.9"
CASSANDRA_DRIVER_VERSION="3.30.1"
# A fresh start on 2 cores takes 10-60 s; the first start after an install is the slowest.
# shellcheck disable=SC2034 # read by testenv/pvenv
CASSANDRA_START_TIMEOUT=180
CASSANDRA_ADDRESS="127.0.0.1"
CASSANDRA_NATIVE_PORT=9042
CASSANDRA_STORAGE_PORT=7000
CASSANDRA_USER="pinvault"
CASSANDRA_PASSWORD="pinvault"
# -Xmx1g caps the heap (Cassandra's JVM would otherwise take a quarter of RAM). The heap starts
# at 256m rather than at -Xmx: Cassandra mlockall()s the memory mapped at startup (it runs as root
# here), so -Xms1g would pin a 1 GiB heap resident (measured: RSS 1556 MiB vs ~800 MiB).
CASSANDRA_HEAP_MIN="256m"
CASSANDRA_HEAP_MAX="1g"

cassandra_files() { echo "$PVENV_ROOT/testenv/services/cassandra"; }
cassandra_home() { echo "$PVENV_CACHE/cassandra/$CASSANDRA_VERSION"; }
cassandra_venv() { echo "$PVENV_CACHE/cassandra/venv"; }

# The venv is keyed by driver version and Python version (a venv breaks when python3 changes).
cassandra_venv_stamp() {
    echo "cassandra-driver==$CASSANDRA_DRIVER_VERSION $(python3 -c 'import sys; print(sys.version.split()[0])')"
}

cassandra_install() {
    local home venv m2
    home=$(cassandra_home)
    venv=$(cassandra_venv)
    command -v java >/dev/null || pv_die "cassandra: java is not installed (Cassandra $CASSANDRA_VERSION runs on the JVM)"
    command -v mvn >/dev/null || pv_die "cassandra: mvn is not installed (it fetches Cassandra from Maven Central)"
    # Installed means the jar the JVM loads is there, not only the stamp.
    if [[ $(cat "$home/stamp" 2>/dev/null) != "$CASSANDRA_VERSION" ||
        ! -f $home/lib/cassandra-all-$CASSANDRA_VERSION.jar ]]; then
        rm -rf "$home"
        mkdir -p "$home"
        # A Maven repository of its own under the cache (self-contained, removable with the
        # cache); dropped once the jars are copied, only lib/ is kept.
        m2="$PVENV_CACHE/cassandra/m2"
        if ! mvn -B -Dstyle.color=never -f "$(cassandra_files)/pom.xml" -Dmaven.repo.local="$m2" \
            -Dcassandra.version="$CASSANDRA_VERSION" \
            dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$home/lib" \
            >"$home/mvn.log" 2>&1; then
            tail -n 30 "$home/mvn.log" >&2
            pv_die "cassandra: mvn dependency:copy-dependencies failed (log: $home/mvn.log)"
        fi
        [[ -f $home/lib/cassandra-all-$CASSANDRA_VERSION.jar ]] ||
            pv_die "cassandra: cassandra-all-$CASSANDRA_VERSION.jar missing after mvn"
        echo "$CASSANDRA_VERSION" >"$home/stamp"
        rm -rf "$m2"
    fi
    # ... and the driver module the probe imports really imports.
    if [[ $(cat "$venv/stamp" 2>/dev/null) != "$(cassandra_venv_stamp)" ]] ||
        ! "$venv/bin/python" -c 'import cassandra.cluster' 2>/dev/null; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        CASS_DRIVER_NO_EXTENSIONS=1 CASS_DRIVER_NO_CYTHON=1 \
            "$venv/bin/pip" install -q --disable-pip-version-check \
            "cassandra-driver==$CASSANDRA_DRIVER_VERSION"
        "$venv/bin/python" -c 'import cassandra.cluster'
        cassandra_venv_stamp >"$venv/stamp"
    fi
}

# cassandra_cql SECONDS ARGS...: testenv/services/cassandra/cql.py in the driver's venv, killed
# after SECONDS.
cassandra_cql() {
    local limit=$1
    shift
    timeout "$limit" "$(cassandra_venv)/bin/python" "$(cassandra_files)/cql.py" "$@"
}

# cassandra_render_yaml OUT KEY=VALUE...: cassandra.yaml.in with each @KEY@ replaced.
cassandra_render_yaml() {
    local out=$1 kv script=""
    shift
    for kv in "$@"; do
        script+="s|@${kv%%=*}@|${kv#*=}|g;"
    done
    sed -e "$script" "$(cassandra_files)/cassandra.yaml.in" >"$out"
}

# cassandra_daemon_cmd DIR YAML XMS XMX: prints the java command line (one word a line) of a node
# whose data lives in DIR (and creates DIR/triggers, which Cassandra wants to exist).
cassandra_daemon_cmd() {
    local dir=$1 yaml=$2 xms=$3 xmx=$4 files
    files=$(cassandra_files)
    mkdir -p "$dir/triggers"
    printf '%s\n' java "-Xms$xms" "-Xmx$xmx"
    # One JVM flag a line; `--add-opens X` is two words.
    grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$files/jvm17-server.options" | tr ' ' '\n'
    # Foreground (stdout stays the log), config and dirs, then startup speed: no wait for gossip
    # to settle, the default superuser created at once (not after 10 s), a 1 s ring delay (30 s
    # by default). No JMX (nodetool is not used) and no jamm agent: neither is needed.
    printf '%s\n' \
        -Dcassandra-foreground=yes \
        "-Dcassandra.config=file://$yaml" \
        "-Dcassandra.storagedir=$dir" \
        "-Dcassandra.logdir=$dir/logs" \
        "-Dcassandra.triggers_dir=$dir/triggers" \
        "-Dlogback.configurationFile=file://$files/logback.xml" \
        -Dcassandra.skip_wait_for_gossip_to_settle=0 \
        -Dcassandra.superuser_setup_delay_ms=0 \
        -Dcassandra.ring_delay_ms=1000 \
        -cp "$(cassandra_home)/lib/*" \
        org.apache.cassandra.service.CassandraDaemon
}

# cassandra_make_tls DIR: a CA and a server certificate for 127.0.0.1/localhost signed by it,
# as PEM files and a PKCS12 keystore (DIR/server.p12) for Cassandra.
cassandra_make_tls() {
    local dir=$1
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=pinvault testenv CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
        >"$dir/server.ext"
    openssl x509 -req -days 30 -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
    openssl pkcs12 -export -name cassandra -in "$dir/server.pem" -inkey "$dir/server.key" \
        -certfile "$dir/ca.pem" -passout pass:pinvault-keystore -out "$dir/server.p12"
}

cassandra_start() {
    local dir="$PVENV_STATE/cassandra" yaml cmd
    rm -rf "$dir/data" "$dir/commitlog" "$dir/saved_caches" "$dir/hints" "$dir/cdc_raw" \
        "$dir/logs" "$dir/triggers" "$dir/tls" "$dir/cassandra.yaml"
    mkdir -p "$dir"
    cassandra_make_tls "$dir/tls"
    yaml="$dir/cassandra.yaml"
    cassandra_render_yaml "$yaml" CLUSTER_NAME=pinvault-test INITIAL_TOKEN= AUTO_BOOTSTRAP=true \
        ADDRESS="$CASSANDRA_ADDRESS" STORAGE_PORT="$CASSANDRA_STORAGE_PORT" \
        NATIVE_PORT="$CASSANDRA_NATIVE_PORT" SEEDS="$CASSANDRA_ADDRESS:$CASSANDRA_STORAGE_PORT" \
        DIR="$dir"
    sed -e "s|@DIR@|$dir|g" "$(cassandra_files)/auth-tls.yaml" >>"$yaml"
    mapfile -t cmd < <(cassandra_daemon_cmd "$dir" "$yaml" "$CASSANDRA_HEAP_MIN" "$CASSANDRA_HEAP_MAX")
    pv_spawn cassandra "${cmd[@]}"
}

# Ready when the test role can log in and a CQL query answers (on a fresh node the first
# successful probe creates the role through the default superuser).
cassandra_health() {
    cassandra_cql 15 health --hosts "$CASSANDRA_ADDRESS:$CASSANDRA_NATIVE_PORT" \
        --user "$CASSANDRA_USER" --password "$CASSANDRA_PASSWORD" --bootstrap-role
}

cassandra_smoke() {
    cassandra_cql 120 smoke --hosts "$CASSANDRA_ADDRESS:$CASSANDRA_NATIVE_PORT" \
        --user "$CASSANDRA_USER" --password "$CASSANDRA_PASSWORD" \
        --ca "$PVENV_STATE/cassandra/tls/ca.pem"
}

cassandra_env() {
    cat <<EOF
export PINVAULT_CASSANDRA_CONTACT_POINTS=$CASSANDRA_ADDRESS:$CASSANDRA_NATIVE_PORT
export PINVAULT_CASSANDRA_USER=$CASSANDRA_USER
export PINVAULT_CASSANDRA_PASSWORD=$CASSANDRA_PASSWORD
export PINVAULT_CASSANDRA_CA_CERT=$PVENV_STATE/cassandra/tls/ca.pem
EOF
}
