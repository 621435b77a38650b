//! Root-cause categories and the action each diagnosis leads to.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The root-cause class of an incident, as listed in the scenario format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// The image or tag cannot be pulled.
    ImagePullError,
    /// The container was killed for exceeding its memory limit.
    OomKilled,
    /// The container's process cannot be started (bad command or args).
    CrashLoopCommand,
    /// The process starts and exits with an application error.
    CrashLoopApp,
    /// A referenced ConfigMap/Secret, or a key in it, does not exist.
    MissingConfigRef,
    /// The liveness probe fails and the kubelet restarts the container.
    LivenessProbeFailed,
    /// The readiness probe fails and the pod never becomes Ready.
    ReadinessProbeFailed,
    /// Requests larger than any node can give.
    InsufficientResources,
    /// Node selector, affinity or taints leave no node to schedule on.
    UnschedulableConstraints,
    /// A volume cannot be mounted or its claim is not bound.
    VolumeMountFailed,
    /// The CPU limit is too low for the load.
    CpuThrottled,
    /// The rollout exceeded its progress deadline with no deeper cause visible.
    RolloutStuck,
    /// The Job exhausted its backoff limit.
    JobFailed,
    /// The evidence supports no class above.
    Unknown,
}

impl Category {
    /// Every category, in the order of the scenario format's table.
    pub const ALL: [Category; 14] = [
        Category::ImagePullError,
        Category::OomKilled,
        Category::CrashLoopCommand,
        Category::CrashLoopApp,
        Category::MissingConfigRef,
        Category::LivenessProbeFailed,
        Category::ReadinessProbeFailed,
        Category::InsufficientResources,
        Category::UnschedulableConstraints,
        Category::VolumeMountFailed,
        Category::CpuThrottled,
        Category::RolloutStuck,
        Category::JobFailed,
        Category::Unknown,
    ];

    /// The snake_case name used in JSON, branch names and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::ImagePullError => "image_pull_error",
            Category::OomKilled => "oom_killed",
            Category::CrashLoopCommand => "crash_loop_command",
            Category::CrashLoopApp => "crash_loop_app",
            Category::MissingConfigRef => "missing_config_ref",
            Category::LivenessProbeFailed => "liveness_probe_failed",
            Category::ReadinessProbeFailed => "readiness_probe_failed",
            Category::InsufficientResources => "insufficient_resources",
            Category::UnschedulableConstraints => "unschedulable_constraints",
            Category::VolumeMountFailed => "volume_mount_failed",
            Category::CpuThrottled => "cpu_throttled",
            Category::RolloutStuck => "rollout_stuck",
            Category::JobFailed => "job_failed",
            Category::Unknown => "unknown",
        }
    }

    /// How the failure shows in Kubernetes (a status reason or event), for titles.
    pub fn symptom(self) -> &'static str {
        match self {
            Category::ImagePullError => "ImagePullBackOff",
            Category::OomKilled => "OOMKilled",
            Category::CrashLoopCommand | Category::CrashLoopApp => "CrashLoopBackOff",
            Category::MissingConfigRef => "CreateContainerConfigError",
            Category::LivenessProbeFailed => "liveness probe failing",
            Category::ReadinessProbeFailed => "readiness probe failing",
            Category::InsufficientResources | Category::UnschedulableConstraints => {
                "FailedScheduling"
            }
            Category::VolumeMountFailed => "FailedMount",
            Category::CpuThrottled => "CPU throttling",
            Category::RolloutStuck => "ProgressDeadlineExceeded",
            Category::JobFailed => "BackoffLimitExceeded",
            Category::Unknown => "unknown failure",
        }
    }

    /// The category's name with dashes, for branch names.
    pub fn slug(self) -> String {
        self.as_str().replace('_', "-")
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kube-autofix does about a diagnosed incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Open (or update) a pull request with a fix.
    Pr,
    /// Change nothing; hand the diagnosis to humans.
    Escalate,
    /// Nothing to do (e.g. the alert is resolved).
    None,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Pr => "pr",
            Action::Escalate => "escalate",
            Action::None => "none",
        })
    }
}
