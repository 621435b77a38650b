//! The kube-autofix pipeline, top to bottom in one place.
//!
//! [`Pipeline::run`] takes one incident through the stages in order: gather **evidence**
//! (snapshot or live cluster), **diagnose** (rules, later an LLM), **remedy** (locate each value
//! in the GitOps repo and edit it losslessly), **validate + risk** (schema, safety policy, risk
//! score), and **publish** (a commit on the incident's branch and a pull request, or an
//! escalation). Each external system sits behind a seam passed in by the caller.
//!
//! Layout: `config.rs` (the config file), `text.rs` (PR, escalation and commit wording),
//! `report.rs` (the run's result, as printed with `--json`).

pub mod config;
pub mod report;
pub mod text;

pub use config::Config;
pub use report::RunReport;

use autofix_cluster::{ClusterError, EvidenceSource};
use autofix_core::{Action, Diagnosis, Evidence, Incident, IncidentKey, Validation, Verdict};
use autofix_diagnose::{DiagnoseError, Diagnoser};
use autofix_forge::{Escalation, Forge, ForgeError, PullRequest};
use autofix_gitops::{FixCommit, GitopsError};
use autofix_policy::{EditedFile, RiskInput, ValidationInput};
use autofix_remedy::{FileEdit, GitopsRepo, Located, RemedyError};
use report::{ChangedFile, PublishedText, ReportedChange};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Why a run failed. Bad input (a broken snapshot or GitOps file) is told apart from faults.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Evidence could not be gathered.
    #[error(transparent)]
    Evidence(#[from] ClusterError),
    /// The diagnoser failed.
    #[error(transparent)]
    Diagnose(#[from] DiagnoseError),
    /// The GitOps repository cannot be read.
    #[error("GitOps repository: {0}")]
    Remedy(#[source] RemedyError),
    /// A file to edit has uncommitted changes in the work tree.
    #[error("{file} has uncommitted changes in {repo}: commit or discard them first")]
    Dirty {
        /// The file.
        file: String,
        /// The work tree.
        repo: String,
    },
    /// Committing the fix failed.
    #[error(transparent)]
    Git(#[from] GitopsError),
    /// The forge refused the pull request or escalation.
    #[error(transparent)]
    Forge(#[from] ForgeError),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl PipelineError {
    /// True when the input (snapshot, alert, GitOps files) is at fault rather than kube-autofix.
    pub fn is_bad_input(&self) -> bool {
        match self {
            PipelineError::Evidence(e) => !matches!(e, ClusterError::Io { .. }),
            PipelineError::Remedy(_) | PipelineError::Dirty { .. } => true,
            PipelineError::Git(e) => matches!(
                e,
                GitopsError::Open { .. }
                    | GitopsError::DetachedHead { .. }
                    | GitopsError::UnbornBranch { .. }
            ),
            _ => false,
        }
    }
}

/// The fix as planned: edits of GitOps files and the rendered workload before and after.
struct Plan {
    edits: Vec<FileEdit>,
    rendered_before: serde_json::Value,
    rendered_after: serde_json::Value,
    /// The edits are Helm values: the rendered objects are the live workload without and with
    /// the declared changes, and the edited files are not the workload's own documents.
    helm: bool,
}

/// One configured pipeline: its seams and settings.
pub struct Pipeline {
    /// Where evidence comes from.
    pub source: Arc<dyn EvidenceSource>,
    /// Who diagnoses.
    pub diagnoser: Arc<dyn Diagnoser>,
    /// Where pull requests and escalations go.
    pub forge: Arc<dyn Forge>,
    /// The GitOps work tree; its checked-out branch is the base of fix branches.
    pub gitops: PathBuf,
    /// Settings.
    pub config: Config,
}

impl Pipeline {
    /// Runs one incident through every stage and reports what was decided and done.
    pub async fn run(&self, incident: &Incident) -> Result<RunReport, PipelineError> {
        self.run_linked(incident, None).await
    }

    /// Like [`Pipeline::run`], with the link to this run's record (e.g. its MLflow run) put
    /// in the pull request or escalation.
    pub async fn run_linked(
        &self,
        incident: &Incident,
        run_link: Option<&str>,
    ) -> Result<RunReport, PipelineError> {
        let mut clock = StageClock::start();
        let evidence = self.source.collect(incident).await?;
        clock.lap("evidence");
        let diagnosis = self.diagnoser.diagnose(&evidence).await?;
        let mut diagnosis = self.gate(diagnosis);
        clock.lap("diagnose");
        let key = IncidentKey {
            cluster: evidence.cluster.clone(),
            workload: diagnosis.workload.clone(),
            category: diagnosis.category,
        };

        let plan = match diagnosis.action {
            Action::Pr => match self.remedy(&evidence, &diagnosis)? {
                Ok(plan) => Some(plan),
                Err(reason) => {
                    diagnosis = diagnosis.escalate(reason);
                    None
                }
            },
            _ => None,
        };
        clock.lap("remedy");

        let verdict = plan
            .as_ref()
            .map(|plan| self.judge(&evidence, &diagnosis, plan));
        if let Some(v) = verdict.as_ref().filter(|v| !v.validation.passed) {
            let broken: Vec<String> = v
                .validation
                .violations
                .iter()
                .map(ToString::to_string)
                .collect();
            diagnosis = diagnosis.escalate(format!(
                "The derived fix breaks validation, so it is not proposed: {}",
                broken.join("; ")
            ));
        }
        clock.lap("validate");

        let mut report = self
            .publish(&key, diagnosis, plan, verdict, run_link)
            .await?;
        clock.lap("publish");
        report.stage_ms = clock.laps;
        Ok(report)
    }

    /// Applies the namespace and kind allow-lists: outside them, diagnose but never change.
    fn gate(&self, diagnosis: Diagnosis) -> Diagnosis {
        let policy = &self.config.policy;
        let w = &diagnosis.workload;
        if diagnosis.action != Action::Pr {
            diagnosis
        } else if !policy.namespace_allowed(&w.namespace) {
            let ns = w.namespace.clone();
            diagnosis.escalate(format!("Namespace `{ns}` is outside the policy allow-list: kube-autofix diagnoses it but changes nothing there."))
        } else if !policy.kind_allowed(w.kind.as_str()) {
            let kind = w.kind;
            diagnosis.escalate(format!(
                "Workload kind {kind} is not in the policy's allowed kinds."
            ))
        } else {
            diagnosis
        }
    }

    /// Locates and edits the GitOps files. `Ok(Err(reason))`: the fix cannot be placed, escalate.
    fn remedy(
        &self,
        evidence: &Evidence,
        diagnosis: &Diagnosis,
    ) -> Result<Result<Plan, String>, PipelineError> {
        let Some(remediation) = &diagnosis.remediation else {
            return Ok(Err("The diagnosis carries no remediation.".into()));
        };
        let repo = GitopsRepo::load(&self.gitops).map_err(PipelineError::Remedy)?;
        let placed = repo
            .locate_any(&evidence.cluster, &diagnosis.workload)
            .and_then(|located| match located {
                Located::Manifests(sources) => {
                    let edits = autofix_remedy::plan_edits(&repo, &sources, remediation)?;
                    let overrides: BTreeMap<String, String> = edits
                        .iter()
                        .map(|e| (e.file.clone(), e.after.clone()))
                        .collect();
                    Ok(Plan {
                        rendered_before: repo.render(&sources, &BTreeMap::new())?,
                        rendered_after: repo.render(&sources, &overrides)?,
                        edits,
                        helm: false,
                    })
                }
                // Helm templates are not rendered here: validate the live object with the
                // declared changes applied.
                Located::Helm(helm) => {
                    let live = &evidence.workload_object;
                    let edits = autofix_remedy::plan_helm_edits(&repo, &helm, remediation, live)?;
                    let mut after = live.clone();
                    for change in &remediation.changes {
                        change.path.set(&mut after, change.to.clone());
                    }
                    Ok(Plan {
                        rendered_before: live.clone(),
                        rendered_after: after,
                        edits,
                        helm: true,
                    })
                }
            });
        let plan = match placed {
            Ok(plan) => plan,
            Err(e) if e.is_bad_input() => return Err(PipelineError::Remedy(e)),
            Err(e) => {
                return Ok(Err(format!(
                    "The fix cannot be placed in the GitOps repository: {e}"
                )));
            }
        };
        for edit in &plan.edits {
            let committed = autofix_gitops::read_base_file(&self.gitops, &edit.file)?;
            if committed.as_deref() != Some(edit.before.as_str()) {
                return Err(PipelineError::Dirty {
                    file: edit.file.clone(),
                    repo: self.gitops.display().to_string(),
                });
            }
        }
        Ok(Ok(plan))
    }

    /// Validates the edited files and scores the risk of the change.
    fn judge(&self, evidence: &Evidence, diagnosis: &Diagnosis, plan: &Plan) -> Verdict {
        let remediation = diagnosis
            .remediation
            .as_ref()
            .expect("a plan implies a remediation");
        let edits: Vec<EditedFile> = plan
            .edits
            .iter()
            .map(|e| EditedFile {
                file: e.file.clone(),
                before: e.before.clone(),
                after: e.after.clone(),
                helm_values: plan.helm,
            })
            .collect();
        let validation = autofix_policy::validate(
            &ValidationInput {
                workload: &diagnosis.workload,
                remediation,
                rendered_before: &plan.rendered_before,
                rendered_after: &plan.rendered_after,
                edits: &edits,
            },
            &self.config.policy,
        );
        let risk = autofix_policy::assess_risk(
            &RiskInput {
                workload: &diagnosis.workload,
                live_workload: &evidence.workload_object,
                remediation,
                namespace_labels: Some(&evidence.namespace_labels),
            },
            &self.config.risk,
        );
        Verdict { validation, risk }
    }

    /// Commits and opens (or updates) the pull request, or records the escalation.
    async fn publish(
        &self,
        key: &IncidentKey,
        diagnosis: Diagnosis,
        plan: Option<Plan>,
        verdict: Option<Verdict>,
        run_link: Option<&str>,
    ) -> Result<RunReport, PipelineError> {
        let changes: Vec<ReportedChange> = diagnosis
            .remediation
            .iter()
            .flat_map(|r| &r.changes)
            .map(|c| ReportedChange {
                path: c.path.to_string(),
                from: c.from.clone().unwrap_or(serde_json::Value::Null),
                to: c.to.clone(),
                reason: c.reason.clone(),
            })
            .collect();
        let files: Vec<ChangedFile> = plan
            .iter()
            .flat_map(|p| &p.edits)
            .map(|e| ChangedFile {
                file: e.file.clone(),
                diff: unified_diff(&e.file, &e.before, &e.after),
                after: e.after.clone(),
            })
            .collect();
        let mut report = RunReport {
            incident: key.short_hash(),
            cluster: key.cluster.clone(),
            category: diagnosis.category,
            action: diagnosis.action,
            workload: diagnosis.workload.clone(),
            container: diagnosis.container.clone(),
            summary: diagnosis.summary.clone(),
            confidence: diagnosis.confidence,
            diagnoser: diagnosis.diagnoser.clone(),
            evidence: diagnosis.evidence.clone(),
            strategy: diagnosis.remediation.as_ref().map(|r| r.strategy.clone()),
            changes: changes.clone(),
            risk: verdict.as_ref().map(|v| v.risk.clone()),
            validation: verdict
                .as_ref()
                .map(|v| v.validation.clone())
                .unwrap_or_else(|| Validation::from_violations(Vec::new())),
            escalation_reason: diagnosis.escalation_reason.clone(),
            branch: None,
            commit: None,
            files_changed: Vec::new(),
            pr: None,
            escalation: None,
            stage_ms: BTreeMap::new(),
        };
        match (diagnosis.action, plan, verdict) {
            (Action::Pr, Some(plan), Some(verdict)) => {
                let strategy = report.strategy.clone().unwrap_or_default();
                let title = text::title(&diagnosis, &changes, &strategy);
                let message = text::commit_message(&title, &diagnosis, key);
                let branch = key.branch_name();
                let work_tree = self.gitops.clone();
                let author = self.config.author();
                let contents: Vec<(String, String)> = plan
                    .edits
                    .iter()
                    .map(|e| (e.file.clone(), e.after.clone()))
                    .collect();
                let commit_branch = branch.clone();
                let outcome = tokio::task::spawn_blocking(move || {
                    autofix_gitops::commit_fix(
                        &work_tree,
                        &FixCommit {
                            branch: &commit_branch,
                            message: &message,
                            files: &contents,
                            author: &author,
                        },
                    )
                })
                .await??;
                let body = text::pr_body(
                    &diagnosis,
                    key,
                    &changes,
                    &files,
                    &verdict.risk,
                    &verdict.validation,
                );
                let body = text::with_run_link(body, run_link);
                let labels = vec![
                    "autofix".to_string(),
                    format!("category/{}", diagnosis.category),
                    format!("risk/{}", verdict.risk.level),
                ];
                let pr = PullRequest {
                    head: branch.clone(),
                    base: outcome.base_branch.clone(),
                    title,
                    body,
                    labels,
                };
                let record = self.forge.open_or_update_pr(&pr).await?;
                report.branch = Some(outcome.branch);
                report.commit = Some(outcome.commit);
                report.files_changed = files;
                report.pr = Some(PublishedText {
                    title: pr.title,
                    body: pr.body,
                    labels: pr.labels,
                    number: record.number,
                    url: record.url,
                    created: record.created,
                });
            }
            (Action::Escalate, _, verdict) => {
                let reason = diagnosis.escalation_reason.clone().unwrap_or_default();
                let escalation = Escalation {
                    key: key.short_hash(),
                    title: text::escalation_title(&diagnosis),
                    body: text::with_run_link(
                        text::escalation_body(
                            &diagnosis,
                            key,
                            &reason,
                            verdict.as_ref().map(|v| &v.validation),
                        ),
                        run_link,
                    ),
                    labels: vec![
                        "autofix".to_string(),
                        "autofix/escalation".to_string(),
                        format!("category/{}", diagnosis.category),
                    ],
                };
                let record = self.forge.escalate(&escalation).await?;
                report.escalation = Some(PublishedText {
                    title: escalation.title,
                    body: escalation.body,
                    labels: escalation.labels,
                    number: record.number,
                    url: record.url,
                    created: record.created,
                });
            }
            _ => {}
        }
        Ok(report)
    }
}

/// Wall-clock time of each stage, in milliseconds.
struct StageClock {
    last: std::time::Instant,
    laps: BTreeMap<String, f64>,
}

impl StageClock {
    fn start() -> Self {
        StageClock {
            last: std::time::Instant::now(),
            laps: BTreeMap::new(),
        }
    }

    /// Records the time since the previous lap under `stage`.
    fn lap(&mut self, stage: &str) {
        let now = std::time::Instant::now();
        let ms = now.duration_since(self.last).as_secs_f64() * 1000.0;
        self.laps.insert(stage.to_string(), ms);
        self.last = now;
    }
}

/// A unified diff of one file, with `a/` and `b/` headers as git prints them.
pub fn unified_diff(file: &str, before: &str, after: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{file}"), &format!("b/{file}"))
        .to_string()
}
