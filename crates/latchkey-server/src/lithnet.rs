//! Reading the `<lithnet-laps><targets>` section of a Lithnet LAPS web app's web.config:
//!
//! ```xml
//! <lithnet-laps>
//!   <targets>
//!     <target name="OU=Workstations,DC=dev1,DC=local" type="Container" expire-after="1.00:00:00">
//!       <audit emailOnSuccess="true" emailOnFailure="true" emailAddresses="sec@dev1.local"/>
//!       <readers>
//!         <reader principal="DEV1\Helpdesk"/>
//!       </readers>
//!     </target>
//!   </targets>
//! </lithnet-laps>
//! ```
//!
//! Every problem is reported with its line; a file with any problem yields no targets.

use latchkey_core::access::{AuditSettings, TargetKind};
use latchkey_core::notification::EmailAddress;
use latchkey_core::{ContainerDn, Principal, TimeSpan};

/// A target read from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct LithnetTarget {
    pub line: u32,
    pub kind: TargetKind,
    pub name: String,
    pub expire_after: Option<TimeSpan>,
    pub audit: AuditSettings,
    pub readers: Vec<Principal>,
}

/// A problem with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u32,
    pub message: String,
}

/// The file's targets in order, or every problem found.
pub fn parse_targets(xml: &str) -> Result<Vec<LithnetTarget>, Vec<Problem>> {
    let doc = roxmltree::Document::parse(xml)
        .map_err(|e| vec![Problem { line: e.pos().row, message: format!("the file is not well-formed XML: {e}") }])?;
    let line_of = |node: roxmltree::Node| doc.text_pos_at(node.range().start).row;
    let section = doc
        .descendants()
        .find(|n| n.has_tag_name("lithnet-laps"))
        .and_then(|laps| laps.children().find(|n| n.has_tag_name("targets")));
    let Some(section) = section else {
        return Err(vec![Problem { line: 1, message: "no <lithnet-laps><targets> section in the file".into() }]);
    };
    let mut targets = Vec::new();
    let mut problems = Vec::new();
    for node in section.children().filter(roxmltree::Node::is_element) {
        let line = line_of(node);
        if !node.has_tag_name("target") {
            problems.push(Problem { line, message: format!("unexpected <{}> in <targets>", node.tag_name().name()) });
            continue;
        }
        match read_target(node, line, &line_of) {
            Ok(t) => targets.push(t),
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() { Ok(targets) } else { Err(problems) }
}

fn read_target(
    node: roxmltree::Node,
    line: u32,
    line_of: &dyn Fn(roxmltree::Node) -> u32,
) -> Result<LithnetTarget, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |line: u32, message: String| problems.push(Problem { line, message });
    let name = node.attribute("name").map(str::trim).unwrap_or_default().to_owned();
    if name.is_empty() {
        problem(line, "target has no name".into());
    }
    let kind = match node.attribute("type") {
        None => {
            problem(line, "target has no type (Computer, Group or Container)".into());
            None
        }
        Some(t) => {
            let kind = TargetKind::parse(t);
            if kind.is_none() {
                problem(line, format!("unknown target type `{t}` (expected Computer, Group or Container)"));
            }
            kind
        }
    };
    if kind == Some(TargetKind::Container) && !name.is_empty() && ContainerDn::parse(&name).is_err() {
        problem(line, format!("container `{name}` is not a distinguished name"));
    }
    let expire_after = match node.attribute("expire-after").map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => match TimeSpan::parse(text) {
            Ok(span) if span > TimeSpan::ZERO => Some(span),
            Ok(_) => {
                problem(line, format!("expire-after `{text}` must be longer than zero"));
                None
            }
            Err(e) => {
                problem(line, format!("expire-after: {e}"));
                None
            }
        },
    };
    let mut audit = AuditSettings::default();
    let mut readers = Vec::new();
    for child in node.children().filter(roxmltree::Node::is_element) {
        let child_line = line_of(child);
        match child.tag_name().name() {
            "audit" => {
                for (attr, slot) in
                    [("emailOnSuccess", &mut audit.email_on_success), ("emailOnFailure", &mut audit.email_on_failure)]
                {
                    match child.attribute(attr).map(|v| v.trim().to_ascii_lowercase()) {
                        None => {}
                        Some(v) if v == "true" => *slot = true,
                        Some(v) if v == "false" => *slot = false,
                        Some(v) => problem(child_line, format!("{attr} must be true or false, not `{v}`")),
                    }
                }
                if let Some(list) = child.attribute("emailAddresses") {
                    for raw in list.split([',', ';']).map(str::trim).filter(|s| !s.is_empty()) {
                        match EmailAddress::parse(raw) {
                            Ok(a) => audit.email_addresses.push(a.as_str().to_owned()),
                            Err(e) => problem(child_line, format!("emailAddresses: {e}")),
                        }
                    }
                }
            }
            "readers" => {
                for reader in child.children().filter(roxmltree::Node::is_element) {
                    let reader_line = line_of(reader);
                    if !reader.has_tag_name("reader") {
                        problem(reader_line, format!("unexpected <{}> in <readers>", reader.tag_name().name()));
                        continue;
                    }
                    match reader.attribute("principal").map(Principal::parse) {
                        Some(Ok(p)) => readers.push(p),
                        Some(Err(e)) => problem(reader_line, format!("reader: {e}")),
                        None => problem(reader_line, "reader has no principal".into()),
                    }
                }
            }
            other => problem(child_line, format!("unexpected <{other}> in <target>")),
        }
    }
    match kind {
        Some(kind) if problems.is_empty() => Ok(LithnetTarget { line, kind, name, expire_after, audit, readers }),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <configSections>
    <section name="lithnet-laps" type="Lithnet.Laps.Web.LapsConfigSection, Lithnet.Laps.Web"/>
  </configSections>
  <lithnet-laps>
    <targets>
      <target name="DEV1\PC-CEO" type="Computer" expire-after="6:12">
        <readers>
          <reader principal="DEV1\Domain Admins"/>
          <reader principal="alice@dev1.local"/>
        </readers>
      </target>
      <target name="OU=Workstations,DC=dev1,DC=local" type="container" expire-after="24:00:00">
        <audit emailOnSuccess="false" emailOnFailure="true" emailAddresses="sec@dev1.local; it@dev1.local"/>
        <readers>
          <reader principal="Helpdesk"/>
        </readers>
      </target>
    </targets>
  </lithnet-laps>
</configuration>
"#;

    #[test]
    fn reads_targets_in_order() {
        let targets = parse_targets(CONFIG).unwrap();
        assert_eq!(targets.len(), 2);
        let ceo = &targets[0];
        assert_eq!((ceo.line, ceo.kind, ceo.name.as_str()), (8, TargetKind::Computer, "DEV1\\PC-CEO"));
        assert_eq!(ceo.expire_after, Some(TimeSpan::parse("0.06:12:00").unwrap()));
        assert_eq!(ceo.audit, AuditSettings::default());
        let readers: Vec<&str> = ceo.readers.iter().map(Principal::as_str).collect();
        assert_eq!(readers, ["DEV1\\Domain Admins", "alice@dev1.local"]);
        let ws = &targets[1];
        assert_eq!((ws.line, ws.kind), (14, TargetKind::Container));
        assert_eq!(ws.expire_after.unwrap().to_duration(), time::Duration::days(24));
        assert!(!ws.audit.email_on_success && ws.audit.email_on_failure);
        assert_eq!(ws.audit.email_addresses, ["sec@dev1.local", "it@dev1.local"]);
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let bad = CONFIG
            .replace("type=\"Computer\"", "type=\"Printer\"")
            .replace("24:00:00", "1:60")
            .replace("sec@dev1.local;", "not-an-address;")
            .replace("principal=\"Helpdesk\"", "principal=\"a\\b\\c\"");
        let problems = parse_targets(&bad).unwrap_err();
        let lines: Vec<u32> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [8, 14, 15, 17], "{problems:?}");
        assert!(problems[0].message.contains("Printer"));
        assert!(problems[1].message.contains("expire-after"));
    }

    #[test]
    fn malformed_xml_names_its_line() {
        let broken = CONFIG.replace("</readers>\n      </target>\n      <target", "</readers>\n      <target");
        let problems = parse_targets(&broken).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("not well-formed"), "{problems:?}");
        assert!(problems[0].line > 8);
    }

    #[test]
    fn a_file_without_the_section_is_refused() {
        let problems = parse_targets("<configuration><appSettings/></configuration>").unwrap_err();
        assert_eq!(problems[0].line, 1);
        assert!(problems[0].message.contains("lithnet-laps"));
    }
}
