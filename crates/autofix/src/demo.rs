//! `autofix demo`: the bundled example incidents, end to end, in a temporary folder.
//!
//! Each example's `gitops/` folder becomes a real git repository with one commit on `main`;
//! the pipeline then runs on the offline default (snapshot, rules, local forge) and a table
//! summarises what it decided, next to what the example expects.

use crate::{offline_pipeline, target};
use anyhow::Context;
use autofix_pipeline::{Config, RunReport};
use include_dir::{Dir, include_dir};
use std::io::{IsTerminal, Write};
use std::path::Path;

/// The example scenarios, compiled into the binary so the demo runs from anywhere.
static EXAMPLES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../examples/scenarios");

/// One row of the summary.
#[derive(serde::Serialize)]
struct Row {
    scenario: String,
    expected_category: String,
    expected_action: String,
    report: RunReport,
}

pub async fn run(keep: bool, json: bool) -> anyhow::Result<()> {
    let temp = tempfile::Builder::new()
        .prefix("autofix-demo-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    EXAMPLES
        .extract(temp.path())
        .context("cannot copy the example scenarios")?;
    let mut names: Vec<String> = EXAMPLES
        .dirs()
        .filter(|d| d.get_file(d.path().join("expected.json")).is_some())
        .map(|d| d.path().display().to_string())
        .collect();
    names.sort();
    let mut rows = Vec::new();
    let progress = !json && std::io::stderr().is_terminal();
    for (i, name) in names.iter().enumerate() {
        if progress {
            eprint!("\r[{}/{}] {name:<50}", i + 1, names.len());
            let _ = std::io::stderr().flush();
        }
        let scenario = temp.path().join(name);
        let repo = temp.path().join("repos").join(name);
        init_repo(&scenario.join("gitops"), &repo)?;
        let pipeline = offline_pipeline(
            &scenario,
            target(Some(&repo), &Config::default())?,
            Config::default(),
        )?;
        let incident = crate::read_incident(&scenario.join("alert.json"))?;
        let report = pipeline
            .run(&incident)
            .await
            .with_context(|| format!("scenario {name}"))?;
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(scenario.join("expected.json"))?)?;
        rows.push(Row {
            scenario: name.clone(),
            expected_category: expected["category"].as_str().unwrap_or("").to_string(),
            expected_action: expected["action"].as_str().unwrap_or("").to_string(),
            report,
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        if progress {
            eprint!("\r{:70}\r", "");
        }
        print_table(&rows);
    }
    if keep {
        let path = temp.keep();
        println!(
            "\nKept {}: each repos/<scenario> holds the fix branch and .git/autofix/ records.",
            path.display()
        );
    }
    Ok(())
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<40} {:<26} {:<9} {:<12} {:<4} result",
        "scenario", "category", "action", "risk", "ok"
    );
    let mut matched = 0;
    for row in rows {
        let r = &row.report;
        let ok = r.category.to_string() == row.expected_category
            && r.action.to_string() == row.expected_action;
        matched += usize::from(ok);
        let risk = r
            .risk
            .as_ref()
            .map_or("-".to_string(), |k| format!("{:.2} {}", k.score, k.level));
        let result = match (&r.pr, &r.escalation) {
            (Some(pr), _) => format!(
                "PR #{} {}",
                pr.number,
                r.files_changed
                    .iter()
                    .map(|f| f.file.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (_, Some(e)) => format!("escalation #{}", e.number),
            _ => "nothing to do".to_string(),
        };
        println!(
            "{:<40} {:<26} {:<9} {:<12} {:<4} {}",
            row.scenario,
            r.category.to_string(),
            r.action.to_string(),
            risk,
            if ok { "yes" } else { "NO" },
            result
        );
    }
    println!(
        "\n{matched}/{} scenarios match their expected category and action.",
        rows.len()
    );
}

/// Makes `repo` a git repository holding `source`'s files in one commit on `main`.
fn init_repo(source: &Path, repo: &Path) -> anyhow::Result<()> {
    copy_dir(source, repo)?;
    let git = git2::Repository::init_opts(
        repo,
        git2::RepositoryInitOptions::new().initial_head("main"),
    )
    .with_context(|| format!("cannot create a git repository in {}", repo.display()))?;
    let mut index = git.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = git.find_tree(index.write_tree()?)?;
    let who = git2::Signature::now("Platform Team", "platform@example.com")?;
    git.commit(
        Some("HEAD"),
        &who,
        &who,
        "Import GitOps repository",
        &tree,
        &[],
    )?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
