#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The container image (`Dockerfile`) and the example Kubernetes deployment
//! (`deploy/kubernetes/switchyard.yaml`) are read and checked against each other and against the
//! gateway: a multi-stage build running as an unprivileged user, the port, the health probes,
//! the configuration the pods mount (loaded as the gateway loads it), several replicas on one
//! PostgreSQL database.

use std::path::PathBuf;

use switchyard_server::config::Config;
use switchyard_server::ledger::HoldMode;
use yaml_rust2::{Yaml, YamlLoader};

fn repository_file(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One build stage of a Dockerfile: its base image, name and instructions (continuation lines
/// joined, comments left out).
#[derive(Debug)]
struct Stage {
    from: String,
    name: Option<String>,
    instructions: Vec<(String, String)>,
}

impl Stage {
    fn all(&self, instruction: &str) -> Vec<&str> {
        self.instructions
            .iter()
            .filter(|(i, _)| i == instruction)
            .map(|(_, a)| a.as_str())
            .collect()
    }

    fn one(&self, instruction: &str) -> &str {
        let all = self.all(instruction);
        assert_eq!(all.len(), 1, "one {instruction} in stage {:?}", self.name);
        all[0]
    }
}

fn dockerfile_stages(text: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            logical.push(std::mem::take(&mut current));
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let (instruction, args) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let instruction = instruction.to_ascii_uppercase();
        let args = args.trim().to_owned();
        if instruction == "FROM" {
            let words: Vec<&str> = args.split_whitespace().collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                [_] => None,
                other => panic!("FROM {other:?}"),
            };
            stages.push(Stage {
                from: words[0].to_owned(),
                name,
                instructions: Vec::new(),
            });
        } else {
            stages
                .last_mut()
                .expect("an instruction before FROM")
                .instructions
                .push((instruction, args));
        }
    }
    stages
}

fn yaml_documents(text: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(text)
        .expect("YAML")
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    let found: Vec<&Yaml> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect();
    assert_eq!(found.len(), 1, "one {kind}");
    found[0]
}

fn string(y: &Yaml) -> &str {
    y.as_str().unwrap_or_else(|| panic!("a string: {y:?}"))
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_unprivileged_in_another() {
    let stages = dockerfile_stages(&repository_file("Dockerfile"));
    assert!(stages.len() >= 2, "multi-stage: {stages:?}");
    let build = &stages[0];
    let build_name = build.name.as_deref().expect("the build stage is named");
    assert!(
        build
            .all("RUN")
            .iter()
            .any(|r| r.contains("cargo build --release --locked -p switchyard")),
        "{build:?}"
    );
    let run = stages.last().expect("final stage");
    assert!(
        !run.from.starts_with("rust"),
        "the toolchain is not shipped: {}",
        run.from
    );
    assert!(
        run.all("COPY")
            .iter()
            .any(|c| c.starts_with(&format!("--from={build_name} "))),
        "the binary comes from the build stage"
    );
    let user = run.one("USER");
    let uid = user.split(':').next().expect("uid");
    assert!(
        uid != "0" && uid != "root" && uid.parse::<u32>().is_ok_and(|u| u >= 1000),
        "runs as an unprivileged numeric user: {user}"
    );
    let port = run.one("EXPOSE");
    assert_eq!(
        run.one("ENV"),
        format!("SWITCHYARD__SERVER__LISTEN=0.0.0.0:{port}")
    );
    let entrypoint: Vec<String> =
        serde_json::from_str(run.one("ENTRYPOINT")).expect("exec-form ENTRYPOINT");
    assert_eq!(entrypoint[0], "switchyard");
    assert_eq!(entrypoint[1], "--config");
    let cmd: Vec<String> = serde_json::from_str(run.one("CMD")).expect("exec-form CMD");
    assert_eq!(cmd, ["serve"]);
}

#[test]
fn the_kubernetes_example_runs_several_unprivileged_replicas_on_one_database() {
    let stages = dockerfile_stages(&repository_file("Dockerfile"));
    let run = stages.last().expect("final stage");
    let uid: i64 = run
        .one("USER")
        .split(':')
        .next()
        .and_then(|u| u.parse().ok())
        .expect("numeric uid");
    let port: i64 = run.one("EXPOSE").parse().expect("port");
    let entrypoint: Vec<String> = serde_json::from_str(run.one("ENTRYPOINT")).expect("entrypoint");
    let config_path = PathBuf::from(&entrypoint[2]);

    let docs = yaml_documents(&repository_file("deploy/kubernetes/switchyard.yaml"));
    let deployment = of_kind(&docs, "Deployment");
    let replicas = deployment["spec"]["replicas"].as_i64().expect("replicas");
    assert!(replicas >= 2, "several replicas");
    let pod = &deployment["spec"]["template"];
    let labels = pod["metadata"]["labels"].as_hash().expect("pod labels");
    for (k, v) in deployment["spec"]["selector"]["matchLabels"]
        .as_hash()
        .expect("selector")
    {
        assert_eq!(labels.get(k), Some(v), "the selector matches the pods");
    }
    let security = &pod["spec"]["securityContext"];
    assert_eq!(security["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(
        security["runAsUser"].as_i64(),
        Some(uid),
        "the image's user"
    );
    let containers = pod["spec"]["containers"].as_vec().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(
        c["securityContext"]["allowPrivilegeEscalation"].as_bool(),
        Some(false)
    );
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    let ports = c["ports"].as_vec().expect("ports");
    assert_eq!(
        ports[0]["containerPort"].as_i64(),
        Some(port),
        "the image's port"
    );
    let port_name = string(&ports[0]["name"]);
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(string(&c[probe]["httpGet"]["path"]), "/health", "{probe}");
        assert_eq!(string(&c[probe]["httpGet"]["port"]), port_name, "{probe}");
    }
    assert_eq!(
        c["args"]
            .as_vec()
            .map(|a| a.iter().map(string).collect::<Vec<_>>()),
        Some(vec!["serve"])
    );
    // The database URL (the same for every replica) and the audit key come from the secret.
    let env = c["env"].as_vec().expect("env");
    let from_secret = |name: &str| {
        env.iter().any(|e| {
            string(&e["name"]) == name && !e["valueFrom"]["secretKeyRef"]["key"].is_badvalue()
        })
    };
    assert!(from_secret("SWITCHYARD__STORE__URL"));
    assert!(from_secret("SWITCHYARD_AUDIT_KEY"));
    // The configuration file is where the image's entrypoint reads it, and the gateway loads it.
    let mount = c["volumeMounts"]
        .as_vec()
        .expect("mounts")
        .iter()
        .find(|m| string(&m["name"]) == "config")
        .expect("config mount");
    assert_eq!(
        PathBuf::from(string(&mount["mountPath"])),
        config_path.parent().expect("directory")
    );
    let config_map = of_kind(&docs, "ConfigMap");
    let file = config_path
        .file_name()
        .and_then(|f| f.to_str())
        .expect("name");
    let text = string(&config_map["data"][file]);
    let config = Config::load(
        file,
        Some(text),
        [(
            "SWITCHYARD__STORE__URL".to_owned(),
            "postgres://switchyard@postgres:5432/switchyard".to_owned(),
        )],
    )
    .expect("the mounted configuration loads");
    assert_eq!(config.server.listen, format!("0.0.0.0:{port}"));
    assert_eq!(config.store.hold_mode(), HoldMode::Database);
    assert!(config.store.leases);
    assert!(
        f64::from(
            deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .and_then(|s| i32::try_from(s).ok())
                .expect("grace")
        ) > config.server.shutdown_grace_secs,
        "Kubernetes waits longer than the gateway's own shutdown grace"
    );
    // The service reaches the pods on their port; disruptions keep most replicas up.
    let service = of_kind(&docs, "Service");
    for (k, v) in service["spec"]["selector"].as_hash().expect("selector") {
        assert_eq!(labels.get(k), Some(v), "the service selects the pods");
    }
    assert_eq!(
        string(&service["spec"]["ports"][0]["targetPort"]),
        port_name
    );
    let pdb = of_kind(&docs, "PodDisruptionBudget");
    let min = pdb["spec"]["minAvailable"].as_i64().expect("minAvailable");
    assert!(min >= 1 && min < replicas);
}
