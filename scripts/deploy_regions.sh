#!/usr/bin/env bash
# Deploy Gemma batch without the rollout pipeline, one region at a time.
#
# Usage:
#   scripts/deploy_regions.sh bootstrap [REGION ...]     cdk bootstrap each region (once per account and region)
#   scripts/deploy_regions.sh diff REGION                cdk diff of one region's stack
#   scripts/deploy_regions.sh deploy REGION              cdk deploy of one region's stack
#   scripts/deploy_regions.sh deploy-all [REGION ...]    deploy the regions in order, stopping at the first failure
# Options after "--" go to every cdk command, e.g. deploy-all -- --require-approval never.
#
# REGION defaults to the regions list in cdk.json, in its order. bootstrap needs the account: the
# ACCOUNT variable, else cdk.json's account, else the caller's account from the AWS CLI. CDK names
# the CDK CLI (default node_modules/.bin/cdk). With the pipeline on, deploy the pipeline stack
# instead; the regional stacks then exist only inside its stages.
set -euo pipefail
cd "$(dirname "$0")/.."

CDK="${CDK:-node_modules/.bin/cdk}"
PYTHON="${PYTHON:-.venv/bin/python}"

usage() {
  sed -n '3,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

configured_regions() {
  "$PYTHON" -c 'import json; print(" ".join(json.load(open("cdk.json"))["context"]["regions"]))'
}

account() {
  if [[ -n "${ACCOUNT:-}" ]]; then
    echo "$ACCOUNT"
    return
  fi
  local configured
  configured="$("$PYTHON" -c 'import json; print(json.load(open("cdk.json"))["context"].get("account", ""))')"
  if [[ -n "$configured" ]]; then
    echo "$configured"
    return
  fi
  aws sts get-caller-identity --query Account --output text
}

[[ $# -ge 1 ]] || usage
command="$1"
shift
arguments=()
cdk_options=()
while [[ $# -gt 0 ]]; do
  if [[ "$1" == "--" ]]; then
    shift
    cdk_options=("$@")
    break
  fi
  arguments+=("$1")
  shift
done

case "$command" in
  bootstrap)
    regions=("${arguments[@]}")
    [[ ${#regions[@]} -gt 0 ]] || read -r -a regions <<< "$(configured_regions)"
    target_account="$(account)"
    for region in "${regions[@]}"; do
      echo "==> bootstrap aws://${target_account}/${region}"
      "$CDK" bootstrap "aws://${target_account}/${region}" "${cdk_options[@]}"
    done
    ;;
  diff | deploy)
    [[ ${#arguments[@]} -eq 1 ]] || { echo "error: $command takes exactly one region, e.g. $command us-west-2" >&2; exit 2; }
    "$CDK" "$command" "GemmaBatch-${arguments[0]}" "${cdk_options[@]}"
    ;;
  deploy-all)
    regions=("${arguments[@]}")
    [[ ${#regions[@]} -gt 0 ]] || read -r -a regions <<< "$(configured_regions)"
    deployed=()
    for index in "${!regions[@]}"; do
      region="${regions[$index]}"
      echo "==> deploy GemmaBatch-${region} ($((index + 1)) of ${#regions[@]})"
      if ! "$CDK" deploy "GemmaBatch-${region}" "${cdk_options[@]}"; then
        echo "error: deploying GemmaBatch-${region} failed; stopped before: ${regions[*]:index+1}" >&2
        echo "deployed: ${deployed[*]:-none}" >&2
        exit 1
      fi
      deployed+=("$region")
    done
    echo "deployed: ${deployed[*]}"
    ;;
  *)
    usage
    ;;
esac
