# Shell functions hack/cluster.sh and hack/real-node.sh share. The sourcing
# script defines LOGS, PIDS and die().

# alive PIDFILE: the process runs and is not a zombie (PID 1 here reaps
# slowly, so kill -0 is not enough).
alive() {
  local pid; pid=$(cat "$1" 2>/dev/null) || return 1
  [ -r "/proc/$pid/stat" ] || return 1
  local st; st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$st" != "Z" ] && [ "$st" != "X" ]
}

# start NAME CMD...: runs CMD in the background in its own session, its
# output appended to $LOGS/NAME.log (a restarted process keeps the history).
start() {
  local name=$1; shift
  if alive "$PIDS/$name.pid"; then return 0; fi
  # etcd reads ETCD_* variables and exits on a conflict with its flags.
  env $(env | awk -F= '/^ETCD_/{print "-u " $1}') setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$PIDS/$name.pid"
}

# stop NAME: SIGTERM, SIGKILL after 10 s.
stop() {
  local f=$PIDS/$1.pid
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if alive "$f"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$f" || break; sleep 0.1; done
    alive "$f" && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# wait_for WHAT SECONDS PROCESS CMD...: polls CMD until it succeeds; fails
# with the end of PROCESS's log when it exits or time runs out.
wait_for() {
  local what=$1 secs=$2 proc=$3; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ -n "$proc" ] && ! alive "$PIDS/$proc.pid"; then
      die "$proc exited while waiting for $what; its log: $LOGS/$proc.log
$(tail -n 20 "$LOGS/$proc.log" 2>/dev/null)"
    fi
    [ $SECONDS -lt $deadline ] || die "timed out after ${secs}s waiting for $what (log: $LOGS/${proc:-?}.log)
$(tail -n 20 "$LOGS/${proc:-none}.log" 2>/dev/null)"
    sleep 0.5
  done
}

# ECDSA throughout: RSA key generation is very slow on these machines.
gen_key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

# self_signed_ca OUT CN DAYS: OUT.key, OUT.crt.
self_signed_ca() {
  gen_key "$1.key"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days "$3" -out "$1.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

# sign_cert OUT CA SUBJECT EKU DAYS [SANS]: OUT.key and OUT.crt, signed by
# CA.crt/CA.key.
sign_cert() {
  local out=$1 ca=$2 subj=$3 eku=$4 days=$5 sans=${6:-}
  leaf_request "$out" "$subj" "$eku" "$sans"
  openssl x509 -req -in "$out.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial \
    -days "$days" -extfile "$out.ext" -out "$out.crt" 2>/dev/null
  rm -f "$out.csr" "$out.ext"
}

# sign_cert_between OUT CA SUBJECT EKU NOT_BEFORE NOT_AFTER [SANS]: as
# sign_cert, valid from NOT_BEFORE to NOT_AFTER (`date -d` forms such as
# "-10 days"): a certificate issued long ago, close to its end. OpenSSL 3.0's
# x509 cannot backdate; its ca command can, from a throwaway database.
sign_cert_between() {
  local out=$1 ca=$2 subj=$3 eku=$4 from to sans=${7:-} db
  from=$(date -u -d "$5" +%Y%m%d%H%M%SZ)
  to=$(date -u -d "$6" +%Y%m%d%H%M%SZ)
  leaf_request "$out" "$subj" "$eku" "$sans"
  db=$(mktemp -d)
  : > "$db/index.txt"
  printf '%s\n' "$(openssl rand -hex 8)" > "$db/serial"
  cat > "$db/ca.cnf" <<CNF
[ca]
default_ca = leaf
[leaf]
database = $db/index.txt
new_certs_dir = $db
serial = $db/serial
default_md = sha256
policy = any
preserve = yes
unique_subject = no
[any]
organizationName = optional
commonName = supplied
CNF
  openssl ca -batch -notext -config "$db/ca.cnf" -cert "$ca.crt" -keyfile "$ca.key" -in "$out.csr" \
    -startdate "$from" -enddate "$to" -extfile "$out.ext" -out "$out.crt" 2>"$db/err" ||
    { cat "$db/err" >&2; rm -rf "$db"; return 1; }
  rm -rf "$db" "$out.csr" "$out.ext"
}

# leaf_request OUT SUBJECT EKU SANS: OUT.key, a request for it (OUT.csr) and
# the extensions a leaf certificate of it carries (OUT.ext).
leaf_request() {
  local out=$1 subj=$2 eku=$3 sans=$4
  gen_key "$out.key"
  openssl req -new -key "$out.key" -subj "$subj" -out "$out.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    if [ -n "$sans" ]; then echo "subjectAltName=$sans"; fi
  } > "$out.ext"
}

# client_kubeconfig FILE USER CERT: a kubeconfig for the local API server
# ($APISERVER_PORT, $CERTS/ca.crt) as USER with CERT.crt/CERT.key.
client_kubeconfig() {
  local k=$1 user=$2 cert=$3
  kubectl config set-cluster local --server="https://127.0.0.1:$APISERVER_PORT" \
    --certificate-authority="$CERTS/ca.crt" --embed-certs=true --kubeconfig="$k" >/dev/null
  kubectl config set-credentials "$user" --client-certificate="$cert.crt" \
    --client-key="$cert.key" --embed-certs=true --kubeconfig="$k" >/dev/null
  kubectl config set-context local --cluster=local --user="$user" --kubeconfig="$k" >/dev/null
  kubectl config use-context local --kubeconfig="$k" >/dev/null
}

# host_ip: this machine's first global IPv4 address (the real node's, and
# the APIServices' endpoint: Endpoints refuse loopback).
host_ip() {
  local ip
  ip=$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]; exit}')
  [ -n "$ip" ] && echo "$ip"
}
