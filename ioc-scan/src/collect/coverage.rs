//! Which terms the host collectors answer, and why the others are not.
//!
//! Every Linux term of the dictionary outside `FileItem` (the file walk's)
//! has an entry here: answered, answered by the live monitor only, or not
//! answered with the reason. Terms the dictionary does not mark for Linux
//! but a Linux host can answer (UserItem, DnsEntryItem...) are listed too.

use super::ebpf::event_item;
use super::{arp, dns, login, logs, module, port, process, route, shell_history, system, task, user, volume};
use crate::terms::support::Support;
use crate::terms::{ids, TermId};
use serde::Serialize;

/// How a term is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum Coverage {
    /// A snapshot collector answers it.
    Supported,
    /// Only the live monitor (eBPF sensors) sees it: the reason says which.
    LiveOnly(&'static str),
    /// Not answered, and why.
    Unsupported(&'static str),
}

impl From<Coverage> for Support {
    /// What a snapshot scan evaluates: live-only terms are not.
    fn from(c: Coverage) -> Support {
        match c {
            Coverage::Supported => Support::Supported,
            Coverage::LiveOnly(reason) | Coverage::Unsupported(reason) => Support::Unsupported(reason),
        }
    }
}

/// Every term answered by a host collector.
pub fn answered() -> impl Iterator<Item = TermId> {
    [
        process::TERMS,
        port::TERMS,
        arp::TERMS,
        route::TERMS,
        system::SYSTEM_TERMS,
        system::AGENT_TERMS,
        user::USER_TERMS,
        user::GROUP_TERMS,
        dns::TERMS,
        module::TERMS,
        volume::VOLUME_TERMS,
        volume::DISK_TERMS,
        login::TERMS,
        logs::SUDO_TERMS,
        logs::SYSLOG_TERMS,
        logs::LOG_TERMS,
        shell_history::TERMS,
        task::TERMS,
    ]
    .into_iter()
    .flatten()
    .copied()
}

const HX_PIPELINE: &str = "describes the FireEye HX agent's event pipeline; ioc-scan's live monitor keeps no such counters";
const HX_SERVER: &str = "state of the HX agent's management-server channel; ioc-scan has no management server";
const CONTAINMENT: &str = "the HX agent's containment state; ioc-scan's own network isolation is a response action (`ioc-scan isolation status`), not host state an IOC describes";
const PROXY: &str = "the HX agent's proxy settings; ioc-scan's agent connects to its console directly";
const OS_LOG: &str = "a macOS unified-log field; Linux syslog text lines do not carry it";
const LIVE_EVENT: &str = "live monitor only: an event of the live monitor (eBPF sensors); a snapshot has no events";

/// The status of a term of a document the host collectors own, or None for
/// other documents (FileItem belongs to the file walk).
pub fn host_status(term: TermId) -> Option<Coverage> {
    let text = term.text();
    if answered().any(|t| t == term) {
        return Some(Coverage::Supported);
    }
    let doc = term.def().document();
    Some(match term {
        ids::AgentInfo_EventorStatus | ids::AgentInfo_KernelServices_Status | ids::AgentInfo_ProcessTrackerStatus => {
            Coverage::Unsupported(HX_PIPELINE)
        }
        _ if text.starts_with("AgentInfo/ProcessTracker/") => Coverage::Unsupported(HX_PIPELINE),
        ids::AgentInfo_configChannel
        | ids::AgentInfo_configETag
        | ids::AgentInfo_configId
        | ids::AgentInfo_intelETag
        | ids::AgentInfo_intelTimestamp
        | ids::AgentInfo_lastMsgMarker
        | ids::AgentInfo_stateAgentStatus
        | ids::SystemInfoItem_stateAgentStatus => Coverage::Unsupported(HX_SERVER),
        ids::AgentInfo_containmentState | ids::AgentInfo_containmentWhitelistArray_ip | ids::SystemInfoItem_containmentState => {
            Coverage::Unsupported(CONTAINMENT)
        }
        ids::AgentInfo_proxyHost | ids::AgentInfo_proxyPort | ids::AgentInfo_proxyType | ids::AgentInfo_proxyUsername => {
            Coverage::Unsupported(PROXY)
        }
        ids::ConfigInfo_ConfigItem_key | ids::ConfigInfo_ConfigItem_val => {
            Coverage::Unsupported("the HX agent's own configuration items; ioc-scan keeps no agent configuration store")
        }
        ids::SystemInfoItem_clockSkew => Coverage::Unsupported("needs a reference clock (the HX server's); ioc-scan has none"),
        ids::PortItem_CreationTime => {
            Coverage::LiveOnly("live monitor only: the connection event's time; /proc does not record when a socket was made")
        }
        ids::Network_DNS => Coverage::LiveOnly("live monitor only: a DNS query seen by the live DNS sensor"),
        _ if doc == "Log" => Coverage::Unsupported(OS_LOG),
        _ if doc == "eventItem" && event_item::terms().any(|t| t == term) => Coverage::LiveOnly(LIVE_EVENT),
        _ if doc == "eventItem" => Coverage::Unsupported(
            "an HX agent event kind the Linux sensors do not produce (image loads, file writes, registry, URLs...)",
        ),
        _ if doc == "Network" => {
            Coverage::Unsupported("needs application payload inspection (HTTP headers, URIs); the sensors do not read payloads")
        }
        _ if doc == "FileItem" => return None,
        _ if !term.def().on_linux() => Coverage::Unsupported("not a Linux term"),
        _ if doc == "DnsEntryItem" => Coverage::Unsupported("a Windows DNS cache record field; /etc/hosts and resolv.conf do not have it"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terms::linux_terms;

    #[test]
    fn every_linux_term_outside_files_is_covered() {
        let missing: Vec<_> = linux_terms()
            .filter(|(id, d)| d.document() != "FileItem" && host_status(*id).is_none())
            .map(|(_, d)| d.text)
            .collect();
        assert!(missing.is_empty(), "no coverage for {missing:?}");
    }

    /// What a scan calls "live monitor only" is what the monitor evaluates:
    /// no live-only term is left unanswered, none answered is missing.
    #[test]
    fn live_only_terms_are_exactly_what_the_monitor_answers() {
        use crate::collect::ebpf::live::{live_only_terms, live_support};
        let live: Vec<TermId> = live_only_terms().collect();
        for (i, def) in crate::terms::TERMS.iter().enumerate() {
            let id = TermId(i as u16);
            let live_only = matches!(host_status(id), Some(Coverage::LiveOnly(_)));
            assert_eq!(live_only, live.contains(&id), "{}", def.text);
            if live_only {
                assert!(live_support(id).is_supported(), "{}", def.text);
            }
        }
    }

    #[test]
    fn answered_terms_belong_to_their_documents() {
        for t in answered() {
            assert_eq!(host_status(t), Some(Coverage::Supported));
        }
        assert_eq!(host_status(ids::FileItem_Md5sum), None);
        assert!(matches!(host_status(ids::eventItem_processEvent_pid), Some(Coverage::LiveOnly(_))));
    }
}
