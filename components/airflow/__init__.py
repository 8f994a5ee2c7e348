"""The Airflow 3 workload on Kubernetes: pure manifest builders (plain dicts, exactly as `kubectl apply`
takes them) and one ComponentResource that declares them (workload.py). Nothing is imported here, so
any module can be loaded on its own (config validation uses pod/git_sync_liveness.py).

Where to look, imports flowing down the list (each module imports only modules above it):

  workload_args.py        the settings as plain, schema-friendly args, and back to AirflowSettings
  workload_spec.py        WorkloadSpec (the resolved inputs), names, ports, paths, labels, metadata
  pod/                    one module per container kind: its container, env, mounts and probes
    shared.py             security contexts, probe/env helpers, image pull policy, the pod's volumes
    git_sync_liveness.py  how a stalled git-sync is noticed (pure; also used by components/config)
    git_sync.py           git-sync: the sidecar and the one-time clone (dagSource git-sync)
    cloud_sql_proxy.py    the Cloud SQL Auth Proxy native sidecar
    shutdown.py           the SIGTERM relay every Airflow process runs under
    settings_env.py       airflowConfig env, and the Secret Manager backend env of the Airflow processes
    airflow_processes.py  scheduler, api-server, dag-processor, triggerer; the Airflow env and mounts
    git_bundle.py         dagSource git-bundle: GitDagBundle env, git connection (fetch_dag_version.py
                          is the task pod's entry point it ships)
    iap_sign_in.py        uiAccess: the IAP auth manager, its modules (auth/ at the root) and role map
    migrations_wait.py    the wait-for-migrations init container and the rollout deadlines it implies
    maintenance.py        the maintenance container and the log groomer it runs
    metrics_exporter.py   the StatsD exporter sidecar, its mapping, Airflow's [metrics] env
    task_pod.py           the KubernetesExecutor's worker pod template
  config_map.py           airflow.cfg, the pod template, the fetch script, the IAP auth modules
  deployment.py           the `airflow` Deployment (the always-on pod)
  dag_processor.py        git-bundle mode: the one dag-processor's own Deployment
  jobs.py                 the migration Job (and admin user), the db-cleanup CronJob
  pod_cleanup.py          the hourly CronJob deleting failed task pods after failedPodRetentionHours
  front_door.py           airflow-gke:uiHost: the Gateway, its routes, health check and backend policies
  access.py               Services, ServiceAccounts, RBAC, NetworkPolicies, PDB, Namespace
  task_pod_accounts.py    the ValidatingAdmissionPolicy: which service accounts task pods may run as
  connections.py          the connection budget read back from rendered manifests
  scraping.py             the PodMonitoring for Managed Service for Prometheus
  workload.py             AirflowWorkload: Secrets, then every object above, as Pulumi resources
"""
