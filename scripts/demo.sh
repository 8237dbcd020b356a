#!/usr/bin/env bash
# Starts the eyeward demo: the relay, a simulated pan-tilt camera and a simulated fixed camera,
# each behind its own agent, and a demo customer and guard-center operator (their logins are
# printed). Runs until Ctrl-C. Open the printed URL in a browser.
#   EYEWARD_DEMO_LISTEN=127.0.0.1:8080  address to serve on
#   EYEWARD_DEMO_DIR=./demo-data        where the demo keeps its database, config and logs
#   EYEWARD_DEMO_PROFILE=release        cargo profile to build (debug builds faster)
#   EYEWARD_DEMO_CHECK=1                start, check that the customer sees both cameras
#                                       online, and stop (the test command does this)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo

listen=${EYEWARD_DEMO_LISTEN:-127.0.0.1:8080}
dir=${EYEWARD_DEMO_DIR:-./demo-data}
profile=${EYEWARD_DEMO_PROFILE:-release}
check=${EYEWARD_DEMO_CHECK:-}
mkdir -p "$dir"
config="$dir/relay.toml"
cat > "$config" <<TOML
listen = "$listen"
data_dir = "$dir/data"
public_url = "http://$listen"
TOML

# The whole workspace. A debug build is the tests' own build (scripts/test.sh builds the
# binaries with the test binaries, whose dev-dependencies turn features on): the same
# features, so nothing is built twice.
if [ "$profile" = release ]; then
  cargo build --release --locked --workspace --bins
  bin=target/release
else
  cargo build --locked --workspace --bins --tests
  bin=target/debug
fi
admin() { "$bin/eyeward-relay" admin --config "$config" "$@" --json; }

customer_email=demo@example.com
operator_email=operator@example.com
password=eyeward-demo

if ! admin customer list | grep -q "\"$customer_email\""; then
  id=$(printf '%s\n' "$password" \
    | admin customer add --email "$customer_email" --name "Demo Customer" --guard-center tokyo --lang en \
        --address "1-9-1 Marunouchi, Chiyoda-ku, Tokyo" --location 35.6812,139.7671 \
    | sed -E 's/.*"id":([0-9]+).*/\1/')
  admin camera add --customer "$id" --name "Living room" --model pan-tilt --plan dispatch --source agent \
    | sed -E 's/.*"agent_token":"([^"]+)".*/\1/' > "$dir/living-room.token"
  admin camera add --customer "$id" --name "Front door" --model fixed --plan camera-only --source agent \
    | sed -E 's/.*"agent_token":"([^"]+)".*/\1/' > "$dir/front-door.token"
  chmod 600 "$dir"/*.token
  printf '%s\n' "$password" \
    | admin operator add --email "$operator_email" --name "Demo Operator" --guard-center tokyo >/dev/null
  admin guard add --guard-center tokyo --name "Kenji Sato" --position 35.6896,139.7006 >/dev/null
  admin guard add --guard-center tokyo --name "Aya Suzuki" --position 35.6586,139.7454 >/dev/null
fi

pids=()
cleanup() { [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

"$bin/eyeward-relay" serve --config "$config" 2> "$dir/relay.log" &
pids+=($!)
for _ in $(seq 100); do
  curl -fs "http://$listen/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
"$bin/eyeward-agent" run --relay "http://$listen" --token-file "$dir/living-room.token" \
  --camera sim://pan-tilt 2> "$dir/agent-living-room.log" &
pids+=($!)
"$bin/eyeward-agent" run --relay "http://$listen" --token-file "$dir/front-door.token" \
  --camera sim://fixed 2> "$dir/agent-front-door.log" &
pids+=($!)

if [ -n "$check" ]; then
  jar=$(mktemp)
  curl -fs -c "$jar" -H 'Content-Type: application/json' -H "Origin: http://$listen" \
    -d "{\"email\":\"$customer_email\",\"password\":\"$password\"}" "http://$listen/api/login" >/dev/null
  for _ in $(seq 100); do
    cameras=$(curl -fs -b "$jar" "http://$listen/api/cameras")
    [ "$(grep -o '"online":true' <<<"$cameras" | wc -l)" -eq 2 ] && break
    sleep 0.1
  done
  rm -f "$jar"
  echo "demo check: $cameras"
  [ "$(grep -o '"online":true' <<<"$cameras" | wc -l)" -eq 2 ] || { echo "demo check: cameras not online" >&2; exit 1; }
  echo "demo check: passed"
  exit 0
fi

cat <<MSG

  eyeward demo — open http://$listen in a browser
    customer:  $customer_email / $password   (a pan-tilt and a fixed camera, both simulated)
    operator:  $operator_email / $password
  Logs are in $dir/*.log. Ctrl-C stops everything.

MSG
wait "${pids[0]}"
