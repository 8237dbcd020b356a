#!/usr/bin/env bash
# Starts the eyeward demo: builds the relay, provisions a demo customer, cameras and a
# guard-center operator (once; their logins are printed), then runs the relay in the
# foreground until Ctrl-C. Open the printed URL in a browser.
#   EYEWARD_DEMO_LISTEN=127.0.0.1:8080  address to serve on
#   EYEWARD_DEMO_DIR=./demo-data        where the demo keeps its database and config
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo

listen=${EYEWARD_DEMO_LISTEN:-127.0.0.1:8080}
dir=${EYEWARD_DEMO_DIR:-./demo-data}
mkdir -p "$dir"
config="$dir/relay.toml"
cat > "$config" <<TOML
listen = "$listen"
data_dir = "$dir/data"
public_url = "http://$listen"
TOML

cargo build --release --locked -p eyeward-relay
relay=target/release/eyeward-relay
admin() { "$relay" admin --config "$config" "$@" --json; }

customer_email=demo@example.com
operator_email=operator@example.com
password=eyeward-demo

if ! admin customer list | grep -q "\"$customer_email\""; then
  id=$(printf '%s\n' "$password" \
    | admin customer add --email "$customer_email" --name "Demo Customer" --guard-center tokyo --lang en \
    | sed -E 's/.*"id":([0-9]+).*/\1/')
  admin camera add --customer "$id" --name "Living room" --model pan-tilt --plan dispatch --source agent \
    | sed -E 's/.*"agent_token":"([^"]+)".*/\1/' > "$dir/living-room.token"
  admin camera add --customer "$id" --name "Front door" --model fixed --plan camera-only --source agent \
    | sed -E 's/.*"agent_token":"([^"]+)".*/\1/' > "$dir/front-door.token"
  chmod 600 "$dir"/*.token
  printf '%s\n' "$password" \
    | admin operator add --email "$operator_email" --name "Demo Operator" --guard-center tokyo >/dev/null
fi

cat <<MSG

  eyeward demo — open http://$listen in a browser
    customer:  $customer_email / $password
    operator:  $operator_email / $password
  Agent tokens for the demo cameras are in $dir/*.token. Ctrl-C stops the relay.

MSG
exec "$relay" serve --config "$config"
