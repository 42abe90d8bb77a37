use super::names::NameError;
use super::*;
use crate::pod::decode::decode_manifest;

fn pod_of(yaml: &str) -> Pod {
    decode_manifest(yaml.as_bytes()).unwrap().remove(0).pod
}

fn errors_of(yaml: &str) -> Vec<String> {
    validate(&pod_of(yaml))
        .iter()
        .map(ToString::to_string)
        .collect()
}

const HEAD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n";

#[test]
fn seccomp_profiles_runtime_default_and_unconfined_only() {
    let pod = |pod_sc: &str, container_sc: &str| {
        errors_of(&format!(
            "{HEAD}  securityContext: {{seccompProfile: {pod_sc}}}\n  containers:\n  - name: c\n    image: busybox\n    securityContext: {{seccompProfile: {container_sc}}}\n"
        ))
    };
    assert!(pod("{type: RuntimeDefault}", "{type: Unconfined}").is_empty());
    assert_eq!(
        pod("{type: Localhost, localhostProfile: x.json}", "{type: Unconfined}"),
        ["spec.securityContext.seccompProfile.type: \"Localhost\" is not supported: use RuntimeDefault or Unconfined"]
    );
    assert_eq!(
        pod("{type: RuntimeDefault}", "{type: Bogus, localhostProfile: x.json}"),
        [
            "spec.containers[0].securityContext.seccompProfile.type: unsupported value \"Bogus\": RuntimeDefault, Unconfined or Localhost",
            "spec.containers[0].securityContext.seccompProfile.localhostProfile: can only be set when the type is Localhost"
        ]
    );
    assert_eq!(
        pod("{type: Unconfined}", "{}"),
        ["spec.containers[0].securityContext.seccompProfile.type: required"]
    );
}

#[test]
fn a_plain_pod_is_valid() {
    let errs = errors_of(&format!(
        "{HEAD}  containers:\n  - name: c\n    image: busybox\n"
    ));
    assert!(errs.is_empty(), "{errs:?}");
}

#[test]
fn unsupported_volume_type_is_named_by_path() {
    let errs = errors_of(&format!(
        "{HEAD}  volumes:\n  - name: a\n    emptyDir: {{}}\n  - name: b\n    nfs:\n      server: x\n      path: /\n  containers:\n  - name: c\n    image: busybox\n"
    ));
    assert_eq!(errs, ["spec.volumes[1].nfs: not supported"]);
}

#[test]
fn names_images_and_duplicates() {
    let errs = errors_of(&format!(
        "{HEAD}  initContainers:\n  - name: c\n    image: busybox\n  containers:\n  - name: c\n    image: ''\n  - name: Bad_Name\n    image: busybox\n"
    ));
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].starts_with("spec.containers[0].name: duplicate"));
    assert_eq!(errs[1], "spec.containers[0].image: required");
    assert!(errs[2].starts_with("spec.containers[1].name: \"Bad_Name\" is not a DNS-1123 label"));
}

#[test]
fn faults_say_which_rule_by_kind() {
    let pod = pod_of(&format!(
        "{HEAD}  initContainers:\n  - name: c\n    image: busybox\n  containers:\n  - name: c\n    image: ''\n  - name: Bad_Name\n    image: busybox\n    resources: {{limits: {{memory: 1Gx}}}}\n"
    ));
    let faults: Vec<Fault> = validate(&pod).into_iter().map(|e| e.fault).collect();
    assert_eq!(
        faults,
        [
            Fault::Duplicate {
                what: "name",
                name: "c".into()
            },
            Fault::Required(None),
            Fault::Name(NameError::Dns1123Label("Bad_Name".into())),
            Fault::Quantity(crate::pod::quantity::QuantityError::UnknownSuffix {
                text: "1Gx".into(),
                suffix: "Gx".into()
            }),
        ]
    );
}

#[test]
fn check_names_the_pod_and_joins_its_faults() {
    let pod = pod_of(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: prod\nspec:\n  hostPID: true\n  containers:\n  - name: c\n    image: ''\n",
    );
    let err = check(&pod).unwrap_err();
    assert_eq!(
        err,
        InvalidPod {
            namespace: "prod".into(),
            name: "web".into(),
            faults: vec![
                FieldError {
                    path: "spec.hostPID".into(),
                    fault: Fault::NotSupported(None)
                },
                FieldError {
                    path: "spec.containers[0].image".into(),
                    fault: Fault::Required(None)
                },
            ]
        }
    );
    assert_eq!(
        err.to_string(),
        "spec.hostPID: not supported; spec.containers[0].image: required"
    );
}

#[test]
fn probes_are_forbidden_on_plain_init_containers() {
    let errs = errors_of(&format!(
        "{HEAD}  initContainers:\n  - name: i\n    image: busybox\n    livenessProbe:\n      exec:\n        command: [\"true\"]\n  containers:\n  - name: c\n    image: busybox\n    restartPolicy: Always\n"
    ));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("spec.initContainers[0].livenessProbe: forbidden"));
    assert!(errs[1].starts_with("spec.containers[0].restartPolicy: forbidden"));
}

#[test]
fn sidecars_take_probes_and_hooks_and_probes_are_checked() {
    let errs = errors_of(&format!(
        "{HEAD}  initContainers:\n  - name: side\n    image: busybox\n    restartPolicy: Always\n    startupProbe:\n      exec:\n        command: [\"true\"]\n    lifecycle:\n      preStop:\n        sleep:\n          seconds: 1\n  - name: bad\n    image: busybox\n    restartPolicy: OnFailure\n  containers:\n  - name: c\n    image: busybox\n    ports:\n    - name: http\n      containerPort: 80\n    livenessProbe:\n      httpGet:\n        port: http\n      successThreshold: 2\n    readinessProbe:\n      tcpSocket:\n        port: web\n      terminationGracePeriodSeconds: 3\n    lifecycle:\n      postStart:\n        exec:\n          command: []\n"
    ));
    assert_eq!(
        errs,
        [
            "spec.initContainers[1].restartPolicy: unsupported value \"OnFailure\": only \"Always\" is allowed",
            "spec.containers[0].livenessProbe.successThreshold: must be 1",
            "spec.containers[0].readinessProbe.tcpSocket.port: no container port named \"web\"",
            "spec.containers[0].readinessProbe.terminationGracePeriodSeconds: must not be set for readinessProbes",
            "spec.containers[0].lifecycle.postStart.exec.command: required",
        ]
    );
}

#[test]
fn a_probe_or_hook_names_exactly_one_handler() {
    let errs = errors_of(&format!(
        "{HEAD}  containers:\n  - name: c\n    image: busybox\n    readinessProbe:\n      periodSeconds: 5\n    lifecycle:\n      preStop:\n        exec:\n          command: [\"true\"]\n        sleep:\n          seconds: 1\n"
    ));
    assert_eq!(
        errs,
        [
            "spec.containers[0].readinessProbe: must specify a handler type",
            "spec.containers[0].lifecycle.preStop: may not specify more than one handler type",
        ]
    );
}

#[test]
fn behaviour_changing_fields_are_errors() {
    let errs = errors_of(&format!(
        "{HEAD}  hostPID: true\n  containers:\n  - name: c\n    image: busybox\n    tty: true\n    env:\n    - name: A\n      valueFrom:\n        fieldRef:\n          fieldPath: metadata.name\n"
    ));
    assert_eq!(errs[0], "spec.hostPID: not supported");
    assert_eq!(errs[1], "spec.containers[0].tty: not supported");
    assert_eq!(errs.len(), 2, "{errs:?}");
}

#[test]
fn env_sources_and_api_volumes_are_checked_by_path() {
    let errs = errors_of(&format!(
        "{HEAD}  volumes:\n  - name: cfg\n    configMap:\n      name: app\n      items: [{{key: a, path: ../escape}}]\n  - name: info\n    downwardAPI:\n      items:\n      - path: ip\n        fieldRef: {{fieldPath: status.podIP}}\n      - path: mem\n        resourceFieldRef: {{resource: limits.memory}}\n  containers:\n  - name: c\n    image: busybox\n    env:\n    - name: A\n      value: x\n      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}\n    - name: B\n      valueFrom: {{fieldRef: {{fieldPath: spec.nope}}}}\n    - name: C\n      valueFrom: {{resourceFieldRef: {{resource: limits.gpu, containerName: other}}}}\n    - name: D\n      valueFrom: {{secretKeyRef: {{name: s, key: ''}}}}\n    - name: E\n      valueFrom: {{fieldRef: {{fieldPath: \"metadata.labels['app']\"}}}}\n    envFrom:\n    - configMapRef: {{name: a}}\n      secretRef: {{name: b}}\n"
    ));
    assert_eq!(
        errs,
        [
            "spec.volumes[0].configMap.items[0].path: \"../escape\" must not contain '..'",
            "spec.volumes[1].downwardAPI.items[0].fieldRef.fieldPath: unsupported value \"status.podIP\"",
            "spec.volumes[1].downwardAPI.items[1].resourceFieldRef.containerName: required",
            "spec.containers[0].env[0].valueFrom: may not be specified when `value` is not empty",
            "spec.containers[0].env[1].valueFrom.fieldRef.fieldPath: unsupported value \"spec.nope\"",
            "spec.containers[0].env[2].valueFrom.resourceFieldRef.resource: unsupported value \"limits.gpu\"",
            "spec.containers[0].env[2].valueFrom.resourceFieldRef.containerName: container \"other\" not found",
            "spec.containers[0].env[3].valueFrom.secretKeyRef.key: required",
            "spec.containers[0].envFrom[0]: must specify exactly one of configMapRef and secretRef",
        ]
    );
}

#[test]
fn ports_and_mounts_are_checked() {
    let errs = errors_of(&format!(
        "{HEAD}  containers:\n  - name: c\n    image: busybox\n    ports:\n    - containerPort: 70000\n    - containerPort: 80\n      hostPort: 8080\n    volumeMounts:\n    - name: missing\n      mountPath: rel\n"
    ));
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert!(errs[0].starts_with("spec.containers[0].ports[0].containerPort"));
    assert!(errs[1].starts_with("spec.containers[0].ports[1].hostPort: not supported"));
    assert!(errs[2].starts_with("spec.containers[0].volumeMounts[0].name"));
    assert!(errs[3].starts_with("spec.containers[0].volumeMounts[0].mountPath"));
}

#[test]
fn a_manifest_uid_that_is_a_path_is_refused_by_field() {
    let errs = errors_of(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  uid: ../../../../../../../../tmp/victim2\nspec:\n  containers:\n  - name: c\n    image: busybox\n",
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "metadata.uid: \"../../../../../../../../tmp/victim2\" is not a valid pod UID"
        ),
        "{errs:?}"
    );
    let errs = errors_of(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  uid: '..'\nspec:\n  containers:\n  - name: c\n    image: busybox\n",
    );
    assert!(errs[0].starts_with("metadata.uid: \"..\""), "{errs:?}");
}

#[test]
fn identifiers_in_volumes_mounts_and_env_are_checked_by_path() {
    let errs = errors_of(&format!(
        "{HEAD}  volumes:\n  - name: cfg\n    configMap:\n      name: ../../x\n      defaultMode: 2541\n      items: [{{key: a, path: /etc/x, mode: 511}}]\n  - name: sec\n    secret:\n      secretName: A/B\n  - name: data\n    emptyDir: {{}}\n  containers:\n  - name: c\n    image: busybox\n    volumeMounts:\n    - name: data\n      mountPath: /d\n      subPath: ../../../tmp/x\n    - name: data\n      mountPath: /e\n      subPath: /abs\n    env:\n    - name: A\n      valueFrom: {{configMapKeyRef: {{name: '..', key: ../k}}}}\n    envFrom:\n    - secretRef: {{name: a/b}}\n"
    ));
    let fields: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "spec.volumes[0].configMap.items[0].path",
            "spec.volumes[0].configMap.defaultMode",
            "spec.volumes[0].configMap.name",
            "spec.volumes[1].secret.secretName",
            "spec.containers[0].env[0].valueFrom.configMapKeyRef.name",
            "spec.containers[0].env[0].valueFrom.configMapKeyRef.key",
            "spec.containers[0].envFrom[0].name",
            "spec.containers[0].volumeMounts[0].subPath",
            "spec.containers[0].volumeMounts[1].subPath",
        ],
        "{errs:?}"
    );
    assert!(errs[0].ends_with("\"/etc/x\" must be a relative path"));
    assert!(errs[7].ends_with("\"../../../tmp/x\" must not contain '..'"));
}
