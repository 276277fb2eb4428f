#!/usr/bin/env bash
# Fetches the public cluster traces Plimsoll uses into this folder, at pinned commits.
# Usage: datasets/download.sh [openb|bitbrains|alibaba2017|alibaba2018|all]   (default: all)
# Needs curl. Files already present are kept. Nothing here is committed to the project.
set -euo pipefail
cd "$(dirname "$0")"
RAW=https://raw.githubusercontent.com

fetch() { # repo commit path dest
  local url="$RAW/$1/$2/$3" dest="$4"
  if [[ -s "$dest" ]]; then echo "have $dest"; return; fi
  mkdir -p "$(dirname "$dest")"
  echo "fetching $dest"
  curl -fsSL --retry 3 -o "$dest.part" "$url" && mv "$dest.part" "$dest"
}

openb() {
  local repo=alibaba/clusterdata c=7a6c496e4f4b6ce6150be8f881cb051bf2abff42 d=cluster-trace-gpu-v2023/csv
  for f in openb_node_list_all_node openb_node_list_gpu_node openb_pod_list_cpu0 \
            openb_pod_list_cpu037 openb_pod_list_cpu050 openb_pod_list_cpu072 openb_pod_list_cpu100 \
            openb_pod_list_cpu200 openb_pod_list_cpu235 openb_pod_list_cpu250 openb_pod_list_cpu300 \
            openb_pod_list_default openb_pod_list_gpushare100 openb_pod_list_gpushare20 \
            openb_pod_list_gpushare40 openb_pod_list_gpushare60 openb_pod_list_gpushare80 \
            openb_pod_list_gpuspec05 openb_pod_list_gpuspec10 openb_pod_list_gpuspec20 \
            openb_pod_list_gpuspec25 openb_pod_list_gpuspec33 openb_pod_list_multigpu20 \
            openb_pod_list_multigpu30 openb_pod_list_multigpu40 openb_pod_list_multigpu50; do
    fetch "$repo" "$c" "$d/$f.csv" "openb/$f.csv" || echo "warning: $f.csv not available" >&2
  done
}

bitbrains() {
  local repo=JessieRayeBauer/Time-Series-Forecasting- c=0901a0da3024507c7732c782621e590077abca64
  for i in $(seq 1 40); do fetch "$repo" "$c" "rnd/2013-7/$i.csv" "bitbrains-rnd/2013-7/$i.csv"; done
}

alibaba2017() {
  fetch Prasanna2002/Alibaba_trace 1b1d720cdddfc8571bd76c321a0f31af8815255a server_event.csv alibaba-2017/server_event.csv
  fetch PriyadarshiniDas/Workload-Prediction-of-Alibaba-Cluster-Dataset 53aa3e8cdc6017036590947b959e0cc4f6694f8f batch_task.csv alibaba-2017/batch_task.csv
}

alibaba2018() {
  local repo=gohsyi/cluster_optimization c=d147f574ff6e93341e59a2ec657aae08b182eb7c
  fetch "$repo" "$c" data/machine_meta.csv alibaba-2018/machine_meta.csv
  # The project uses only the first 100,001 rows of machine_usage (10-second samples).
  if [[ ! -s alibaba-2018/machine_usage_head100k.csv ]]; then
    fetch "$repo" "$c" data/machine_usage.csv alibaba-2018/machine_usage.csv
    head -n 100001 alibaba-2018/machine_usage.csv > alibaba-2018/machine_usage_head100k.csv
  fi
}

case "${1:-all}" in
  openb) openb ;; bitbrains) bitbrains ;; alibaba2017) alibaba2017 ;; alibaba2018) alibaba2018 ;;
  all) openb; bitbrains; alibaba2017; alibaba2018 ;;
  *) echo "usage: $0 [openb|bitbrains|alibaba2017|alibaba2018|all]" >&2; exit 2 ;;
esac
