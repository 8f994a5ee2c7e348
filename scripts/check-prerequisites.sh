#!/usr/bin/env bash
# Checks what `pulumi up` needs from your machine and project but cannot set up itself.
# Usage: scripts/check-prerequisites.sh PROJECT_ID      (exit 0: ready; 1: something to fix, listed)
set -uo pipefail

project="${1:-}"
if [ -z "$project" ]; then
  echo "usage: $0 PROJECT_ID" >&2
  exit 2
fi

# Keep in sync with PREREQUISITE_APIS in components/services.py (a unit test compares them): the program
# enables every other API itself, but enabling goes through these two.
prerequisite_apis="cloudresourcemanager.googleapis.com serviceusage.googleapis.com"

problems=0
problem() { echo "MISSING: $1" >&2; echo "  fix: $2" >&2; problems=$((problems + 1)); }

for tool in gcloud pulumi gke-gcloud-auth-plugin; do
  command -v "$tool" >/dev/null 2>&1 || case "$tool" in
    gcloud) problem "gcloud" "install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install" ;;
    pulumi) problem "pulumi" "install the Pulumi CLI: https://www.pulumi.com/docs/install/" ;;
    gke-gcloud-auth-plugin) problem "gke-gcloud-auth-plugin (kubeconfig and Kubernetes provider auth)" \
      "gcloud components install gke-gcloud-auth-plugin" ;;
  esac
done

if command -v gcloud >/dev/null 2>&1; then
  if ! gcloud auth application-default print-access-token >/dev/null 2>&1; then
    problem "application default credentials (what Pulumi's Google provider uses)" "gcloud auth application-default login"
  elif ! enabled=$(gcloud services list --enabled --project "$project" --format='value(config.name)' 2>&1); then
    problem "access to project $project: $enabled" "check the project id and your roles in it"
  else
    for api in $prerequisite_apis; do
      grep -qx "$api" <<<"$enabled" || problem "$api is not enabled in $project" \
        "gcloud services enable $api --project $project"
    done
  fi
fi

if [ "$problems" -gt 0 ]; then
  echo "$problems prerequisite(s) missing; see docs/deploy.md, Prerequisites." >&2
  exit 1
fi
echo "Prerequisites for $project: OK"
