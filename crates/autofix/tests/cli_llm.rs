//! `autofix diagnose --llm` with the real binary against the scripted fake OpenAI server: the
//! key comes from the environment, the provider from the config file, and the long-tail
//! incident the rules call `unknown` gets the model's diagnosis; without `--llm` (and with the
//! default `rules` mode) the model is never asked.

use autofix_testkit::{FakeOpenAi, LONG_TAIL_SCENARIO, Reply, long_tail_patch};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn scenario() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(LONG_TAIL_SCENARIO)
}

fn diagnose(config: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_autofix"))
        .arg("diagnose")
        .arg(scenario())
        .arg("--config")
        .arg(config)
        .args(extra)
        .env("AUTOFIX_TEST_LLM_KEY", "sk-test-key")
        .env_remove("AUTOFIX_CONFIG")
        .env_remove("OPENAI_API_KEY")
        .output()
        .expect("autofix runs")
}

#[test]
fn diagnose_llm_asks_the_configured_provider() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(FakeOpenAi::start()).unwrap();
    fake.script(vec![Reply::Patch(long_tail_patch())]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("autofix.toml");
    std::fs::write(
        &config,
        format!(
            "[llm]\nbase_url = {:?}\nmodel = \"scripted\"\napi_key_env = \"AUTOFIX_TEST_LLM_KEY\"\nmax_retries = 0\n",
            fake.url()
        ),
    )
    .unwrap();

    // The default mode is `rules`: no request without --llm.
    let out = diagnose(&config, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rules: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rules["action"], "escalate");
    assert!(
        fake.requests().is_empty(),
        "the rules mode never asks the model"
    );

    let out = diagnose(&config, &["--llm", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let llm: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(llm["action"], "pr", "{llm:#}");
    assert_eq!(llm["diagnoser"], "llm/scripted");
    assert_eq!(
        llm["remediation"]["changes"][0]["path"],
        "spec.template.spec.terminationGracePeriodSeconds"
    );
    assert_eq!(llm["attempts"].as_array().map(Vec::len), Some(1));
    let requests = fake.recorded();
    assert_eq!(requests.len(), 1);
    let auth = requests[0]
        .headers
        .get("authorization")
        .cloned()
        .unwrap_or_default();
    assert_eq!(auth, "Bearer sk-test-key");

    // A missing key is bad input naming the variable, before any request.
    let out = Command::new(env!("CARGO_BIN_EXE_autofix"))
        .args([
            "diagnose",
            scenario().to_str().unwrap(),
            "--llm",
            "--config",
        ])
        .arg(&config)
        .env_remove("AUTOFIX_TEST_LLM_KEY")
        .env_remove("AUTOFIX_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AUTOFIX_TEST_LLM_KEY"));
    assert_eq!(fake.recorded().len(), 1);
}
