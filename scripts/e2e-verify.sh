#!/usr/bin/env bash
# Check a deployed stack end to end (used by .github/workflows/e2e.yml; runnable by hand with the
# stack's kubeconfig): the API server's health endpoint reports a healthy metadatabase and scheduler,
# then one DAG run succeeds with its task pods launched by the KubernetesExecutor.
# Usage: KUBECONFIG=... scripts/e2e-verify.sh NAMESPACE UI_SERVICE [DAG_ID]
set -euo pipefail
namespace=$1
ui_service=$2
dag=${3:-example_hello}
k() { kubectl --namespace "$namespace" "$@"; }

deployment=$(k get deployment --output name | head -n 1)
echo "waiting for ${deployment} to roll out"
k rollout status "$deployment" --timeout=20m

port=$(k get service "$ui_service" --output jsonpath='{.spec.ports[0].port}')
k port-forward "service/${ui_service}" 18080:"${port}" >/tmp/port-forward.log 2>&1 &
forward=$!
trap 'kill "$forward" 2>/dev/null || true' EXIT

echo "waiting for /api/v2/monitor/health"
healthy=""
for _ in $(seq 60); do
  if curl --fail --silent --show-error http://127.0.0.1:18080/api/v2/monitor/health \
      | jq --exit-status '.metadatabase.status == "healthy" and .scheduler.status == "healthy"' >/dev/null; then
    healthy=yes; break
  fi
  sleep 10
done
[ -n "$healthy" ] || { echo "health endpoint never reported healthy"; cat /tmp/port-forward.log; exit 1; }

run_id="e2e-$(date +%s)"
airflow() { k exec "$deployment" --container scheduler -- airflow "$@"; }
airflow dags unpause "$dag"
airflow dags trigger "$dag" --run-id "$run_id"
echo "waiting for DAG run ${dag}/${run_id}"
state=""
for _ in $(seq 120); do
  state=$(airflow dags list-runs "$dag" --output json 2>/dev/null | jq --raw-output --arg id "$run_id" '.[] | select(.run_id == $id) | .state')
  case "$state" in
    success) break ;;
    failed) echo "DAG run failed"; exit 1 ;;
  esac
  sleep 10
done
[ "$state" = success ] || { echo "DAG run still '${state}' after 20 minutes"; exit 1; }

# Task pods are deleted when they finish; their scheduling events stay for an hour.
pod_prefix=${dag//_/-}
scheduled=$(k get events --field-selector reason=Scheduled --output json \
  | jq --arg p "$pod_prefix" '[.items[] | select(.involvedObject.name | startswith($p))] | length')
[ "$scheduled" -gt 0 ] || { echo "no task pod of ${dag} was scheduled: not the KubernetesExecutor?"; exit 1; }
echo "OK: healthy, ${dag} run ${run_id} succeeded with ${scheduled} task pod(s)"
