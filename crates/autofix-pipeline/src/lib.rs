//! The kube-autofix pipeline, top to bottom in one place.
//!
//! [`Pipeline::run`] takes one incident through the stages in order: gather **evidence**
//! (snapshot or live cluster), **diagnose** (rules, later an LLM), **remedy** (locate each value
//! in the GitOps repo and edit it losslessly), **validate + risk** (schema, safety policy, risk
//! score), and **publish** (a commit on the incident's branch and a pull request, or an
//! escalation). Each external system sits behind a seam passed in by the caller.
//!
//! Layout: `config.rs` (the config file), `target.rs` (the local work tree or the remote
//! repositories an incident's fix goes to), `text.rs` (PR, escalation and commit wording),
//! `report.rs` (the run's result, as printed with `--json`).

mod choice;
pub mod config;
pub mod report;
mod target;
pub mod text;

pub use config::Config;
pub use report::RunReport;
pub use target::{GitAuth, Route, Target};

use autofix_cluster::{ClusterError, DryRunVerdict, DryRunner, EvidenceSource};
use autofix_core::{Action, Diagnosis, Evidence, Incident, IncidentKey, Verdict};
use autofix_diagnose::{DiagnoseError, Diagnoser};
use autofix_forge::{Escalation, ForgeError, PullRequest};
use autofix_gitops::{FixCommit, GitopsError, PushOutcome};
use autofix_policy::{EditedFile, RiskInput, ValidationInput};
use autofix_remedy::{FileEdit, GitopsRepo, Located, RemedyError, Scope};
use report::{ChangedFile, DryRunOutcome, PublishedText};
use std::collections::BTreeMap;
use std::sync::Arc;
use target::Workspace;

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
    /// No `[[gitops.repos]]` entry takes incidents of this cluster and namespace.
    #[error(
        "no [[gitops.repos]] entry takes incidents of namespace `{namespace}` on cluster `{cluster}`"
    )]
    NoRepository {
        /// The incident's cluster.
        cluster: String,
        /// The workload's namespace.
        namespace: String,
    },
    /// Credentials named in the config cannot be read.
    #[error("cannot read {what}: {reason}")]
    Credentials {
        /// Which credentials.
        what: String,
        /// Why.
        reason: String,
    },
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl PipelineError {
    /// True when the input (snapshot, alert, GitOps files) is at fault rather than kube-autofix.
    pub fn is_bad_input(&self) -> bool {
        match self {
            PipelineError::Evidence(e) => !matches!(e, ClusterError::Io { .. }),
            PipelineError::Remedy(_)
            | PipelineError::Dirty { .. }
            | PipelineError::NoRepository { .. }
            | PipelineError::Credentials { .. } => true,
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

/// Strategy statistics learned from fix outcomes, shared by the service that records outcomes
/// and the pipeline that picks fixes.
pub type LearnedStrategies = Arc<std::sync::RwLock<autofix_choose::StrategyBandit>>;

/// One configured pipeline: its seams and settings.
pub struct Pipeline {
    /// Where evidence comes from.
    pub source: Arc<dyn EvidenceSource>,
    /// Who diagnoses.
    pub diagnoser: Arc<dyn Diagnoser>,
    /// The GitOps repositories fixes go to, and where pull requests and escalations go.
    pub target: Target,
    /// The cluster's admission, asked about each fix in a server-side dry run before it is
    /// published (`[dry_run]`, off by default: `None`).
    pub dry_run: Option<DryRunner>,
    /// Which strategy's fixes work per category, learned from outcomes by the service
    /// (`[choose] learn`); `None`: candidates are picked by the rank order alone.
    pub strategies: Option<LearnedStrategies>,
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
        if diagnosis.action == Action::None {
            let mut report = RunReport::new(&key, &diagnosis, None);
            report.stage_ms = clock.laps;
            return Ok(report);
        }

        // A remote repository is fetched (and held for this run) only when there is a fix.
        let workspace = self
            .target
            .checkout(
                &evidence.cluster,
                &diagnosis.workload.namespace,
                diagnosis.action == Action::Pr,
            )
            .await?;
        // Every candidate fix is placed in the repository and judged; one is chosen.
        let chosen = match diagnosis.action {
            Action::Pr => self.choose_fix(&workspace, &evidence, &mut diagnosis)?,
            _ => choice::Chosen {
                plan: None,
                verdict: None,
                candidates: None,
                source: None,
            },
        };
        let (plan, verdict) = (chosen.plan, chosen.verdict);
        clock.lap("remedy");

        if let Some(reason) = verdict.as_ref().and_then(|v| self.refusal(v)) {
            diagnosis = diagnosis.escalate(reason);
        }
        clock.lap("validate");

        let dry_run = match (&self.dry_run, &plan) {
            (Some(runner), Some(plan)) if diagnosis.action == Action::Pr => {
                let outcome = self.admission(runner, &diagnosis, plan).await;
                if let DryRunOutcome::Judged(DryRunVerdict::Denied {
                    code,
                    reason,
                    message,
                }) = &outcome
                {
                    diagnosis = diagnosis.escalate(format!(
                        "The cluster's admission denied the corrected object in a server-side dry run ({code} {reason}): {message}"
                    ));
                }
                clock.lap("dry_run");
                Some(outcome)
            }
            _ => None,
        };

        let mut report = self
            .publish(
                &workspace,
                &key,
                &evidence,
                diagnosis,
                plan,
                verdict,
                Weighing {
                    candidates: chosen.candidates,
                    source: chosen.source,
                    dry_run,
                },
                run_link,
            )
            .await?;
        clock.lap("publish");
        report.stage_ms = clock.laps;
        Ok(report)
    }

    /// Why a judged fix must not be proposed: it breaks validation, or its risk is at or above
    /// the block threshold.
    fn refusal(&self, verdict: &Verdict) -> Option<String> {
        if !verdict.validation.passed {
            let broken: Vec<String> = verdict
                .validation
                .violations
                .iter()
                .map(ToString::to_string)
                .collect();
            return Some(format!(
                "The derived fix breaks validation, so it is not proposed: {}",
                broken.join("; ")
            ));
        }
        let block_at = self.config.risk.block_at;
        (verdict.risk.score >= block_at).then(|| {
            format!(
                "The derived fix scores risk {:.2}, at or above the block threshold {block_at:.2}, so it is not proposed.",
                verdict.risk.score
            )
        })
    }

    /// Asks the API server whether it would admit the corrected workload (the rendered object
    /// after the edit), with a server-side apply dry run. Never fails the run: a dry run that
    /// cannot be made is reported as unavailable.
    async fn admission(
        &self,
        runner: &DryRunner,
        diagnosis: &Diagnosis,
        plan: &Plan,
    ) -> DryRunOutcome {
        let mut object = plan.rendered_after.clone();
        if let Some(metadata) = object.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            // GitOps files often leave the namespace to kustomize or Argo CD.
            metadata
                .entry("namespace")
                .or_insert_with(|| diagnosis.workload.namespace.clone().into());
            // Server-populated fields have no place in an apply.
            for field in [
                "resourceVersion",
                "uid",
                "managedFields",
                "creationTimestamp",
            ] {
                metadata.remove(field);
            }
        }
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
        match runner.check(&object).await {
            Ok(verdict) => DryRunOutcome::Judged(verdict),
            Err(e) => {
                tracing::warn!(error = %e, "server-side dry run unavailable");
                DryRunOutcome::Unavailable {
                    error: e.to_string(),
                }
            }
        }
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
        workspace: &Workspace,
        evidence: &Evidence,
        diagnosis: &Diagnosis,
    ) -> Result<Result<Plan, String>, PipelineError> {
        let Some(remediation) = &diagnosis.remediation else {
            return Ok(Err("The diagnosis carries no remediation.".into()));
        };
        let repo = GitopsRepo::load(&workspace.work_tree).map_err(PipelineError::Remedy)?;
        let scope = Scope::from_markers(workspace.path.clone(), &evidence.workload_object);
        let placed = repo
            .locate_in(&evidence.cluster, &diagnosis.workload, &scope)
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
            let committed = autofix_gitops::read_base_file(&workspace.work_tree, &edit.file)?;
            if committed.as_deref() != Some(edit.before.as_str()) {
                return Err(PipelineError::Dirty {
                    file: edit.file.clone(),
                    repo: workspace.work_tree.display().to_string(),
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

    /// Commits, pushes and opens (or updates) the pull request, or records the escalation.
    #[allow(clippy::too_many_arguments)]
    async fn publish(
        &self,
        workspace: &Workspace,
        key: &IncidentKey,
        evidence: &Evidence,
        diagnosis: Diagnosis,
        plan: Option<Plan>,
        verdict: Option<Verdict>,
        weighing: Weighing,
        run_link: Option<&str>,
    ) -> Result<RunReport, PipelineError> {
        let files: Vec<ChangedFile> = plan
            .iter()
            .flat_map(|p| &p.edits)
            .map(|e| ChangedFile {
                file: e.file.clone(),
                diff: unified_diff(&e.file, &e.before, &e.after),
                after: e.after.clone(),
            })
            .collect();
        let mut report = RunReport::new(key, &diagnosis, verdict.as_ref());
        report.candidates = weighing.candidates;
        report.source = weighing
            .source
            .filter(|_| report.strategy.is_some())
            .map(|s| s.to_string());
        report.dry_run = weighing.dry_run;
        match (diagnosis.action, plan, verdict) {
            (Action::Pr, Some(plan), Some(verdict)) => {
                let proposal = Proposal {
                    workspace,
                    key,
                    evidence,
                    diagnosis: &diagnosis,
                    plan: &plan,
                    files,
                    verdict: &verdict,
                    run_link,
                };
                if let Some(reason) = self.propose(proposal, &mut report).await? {
                    let diagnosis = diagnosis.escalate(reason);
                    report.action = diagnosis.action;
                    report.escalation_reason = diagnosis.escalation_reason.clone();
                    report.files_changed.clear();
                    self.escalate(
                        workspace,
                        key,
                        &diagnosis,
                        Some(&verdict),
                        run_link,
                        &mut report,
                    )
                    .await?;
                }
            }
            (Action::Escalate, _, verdict) => {
                self.escalate(
                    workspace,
                    key,
                    &diagnosis,
                    verdict.as_ref(),
                    run_link,
                    &mut report,
                )
                .await?;
            }
            _ => {}
        }
        Ok(report)
    }

    /// Commits the fix on the incident's branch, pushes it when the repository is remote, and
    /// opens or updates its pull request. Answers a reason to escalate instead when the base
    /// changed the fix's lines meanwhile.
    async fn propose(
        &self,
        p: Proposal<'_>,
        report: &mut RunReport,
    ) -> Result<Option<String>, PipelineError> {
        let diagnosis = p.diagnosis;
        let strategy = report.strategy.clone().unwrap_or_default();
        let title = text::title(diagnosis, &report.changes, &strategy);
        let message = text::commit_message(&title, diagnosis, p.key);
        let branch = p.key.branch_name();
        let work_tree = p.workspace.work_tree.clone();
        let author = self.config.author();
        let contents: Vec<(String, String)> = p
            .plan
            .edits
            .iter()
            .map(|e| (e.file.clone(), e.after.clone()))
            .collect();
        let fix_id = fix_id(&contents);
        let commit_branch = branch.clone();
        let commit_author = author.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            autofix_gitops::commit_fix(
                &work_tree,
                &FixCommit {
                    branch: &commit_branch,
                    message: &message,
                    files: &contents,
                    author: &commit_author,
                },
            )
        })
        .await??;
        report.branch = Some(outcome.branch.clone());
        report.commit = Some(outcome.commit.clone());
        report.files_changed = p.files;

        // The same fix, once declined by a reviewer, is not proposed again for this incident.
        let forge = &p.workspace.forge;
        let declined = forge.declined(&branch, &outcome.base_branch).await?;
        if let Some(pr) = declined
            .iter()
            .find(|pr| pr.body.contains(&text::fix_marker(&fix_id)))
        {
            report.note = Some(format!(
                "This fix was declined in pull request #{} ({}), closed without merging: it is not proposed again.",
                pr.number, pr.url
            ));
            return Ok(None);
        }

        if let Some(remote) = &p.workspace.remote {
            report.remote = Some(remote.mirror.spec().url.clone());
            let mirror = remote.mirror.clone();
            let credentials = remote.credentials.clone();
            let push_branch = branch.clone();
            let pushed = tokio::task::spawn_blocking(move || {
                mirror.push_fix(&push_branch, &author, &credentials)
            })
            .await??;
            match pushed {
                PushOutcome::Pushed { commit, .. } | PushOutcome::UpToDate { commit } => {
                    report.commit = Some(commit);
                }
                PushOutcome::HumanEdited {
                    remote_commit,
                    author,
                } => {
                    report.commit = Some(remote_commit);
                    report.note = Some(format!(
                        "Branch `{branch}` has commits by {author}: kube-autofix leaves it and its pull request to them."
                    ));
                    return Ok(None);
                }
                PushOutcome::AlreadyOnBase { base_commit } => {
                    report.commit = None;
                    report.note = Some(format!(
                        "The base branch already holds this fix (at {base_commit}): nothing to propose."
                    ));
                    return Ok(None);
                }
                PushOutcome::Conflict { files, .. } => {
                    report.commit = None;
                    return Ok(Some(format!(
                        "The base branch changed the lines this fix edits ({}) after the fix was made; a human must reconcile the two.",
                        files.join(", ")
                    )));
                }
            }
        }

        let body = text::pr_body(&text::PrText {
            diagnosis,
            key: p.key,
            evidence: p.evidence,
            changes: &report.changes,
            files: &report.files_changed,
            risk: &p.verdict.risk,
            validation: &p.verdict.validation,
            dry_run: report.dry_run.as_ref(),
            candidates: report.candidates.as_ref(),
            fix_id: &fix_id,
        });
        let body = text::with_run_link(body, p.run_link);
        let pr = PullRequest {
            head: branch,
            base: outcome.base_branch,
            title,
            body,
            labels: vec![
                "autofix".to_string(),
                format!("category/{}", diagnosis.category),
                format!("risk/{}", p.verdict.risk.level),
            ],
            draft: p.verdict.risk.score >= self.config.risk.review_at,
            reviewers: self.config.github.reviewers.clone(),
            team_reviewers: self.config.github.team_reviewers.clone(),
        };
        let record = p.workspace.forge.open_or_update_pr(&pr).await?;
        report.pr = Some(PublishedText {
            title: pr.title,
            body: pr.body,
            labels: pr.labels,
            number: record.number,
            url: record.url,
            created: record.created,
        });
        Ok(None)
    }

    /// Opens or updates the escalation issue of the incident.
    async fn escalate(
        &self,
        workspace: &Workspace,
        key: &IncidentKey,
        diagnosis: &Diagnosis,
        verdict: Option<&Verdict>,
        run_link: Option<&str>,
        report: &mut RunReport,
    ) -> Result<(), PipelineError> {
        let reason = diagnosis.escalation_reason.clone().unwrap_or_default();
        let escalation = Escalation {
            key: key.short_hash(),
            title: text::escalation_title(diagnosis),
            body: text::with_run_link(
                text::escalation_body(diagnosis, key, &reason, verdict),
                run_link,
            ),
            labels: vec![
                "autofix".to_string(),
                "autofix/escalation".to_string(),
                format!("category/{}", diagnosis.category),
            ],
        };
        let record = workspace.forge.escalate(&escalation).await?;
        report.escalation = Some(PublishedText {
            title: escalation.title,
            body: escalation.body,
            labels: escalation.labels,
            number: record.number,
            url: record.url,
            created: record.created,
        });
        Ok(())
    }
}

/// Everything [`Pipeline::propose`] needs about one fix.
/// What was weighed besides the fix's own verdict: the other candidates and the cluster's
/// dry run.
struct Weighing {
    candidates: Option<report::CandidatesReport>,
    source: Option<autofix_choose::Strategy>,
    dry_run: Option<DryRunOutcome>,
}

struct Proposal<'a> {
    workspace: &'a Workspace,
    key: &'a IncidentKey,
    evidence: &'a Evidence,
    diagnosis: &'a Diagnosis,
    plan: &'a Plan,
    files: Vec<ChangedFile>,
    verdict: &'a Verdict,
    run_link: Option<&'a str>,
}

/// A short digest of a fix's files and contents: the same fix has the same id.
fn fix_id(contents: &[(String, String)]) -> String {
    let mut bytes = Vec::new();
    for (file, content) in contents {
        bytes.extend_from_slice(file.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(content.as_bytes());
        bytes.push(0);
    }
    autofix_core::short_digest(&bytes)
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
