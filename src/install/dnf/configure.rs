//! The kickstart's system commands applied to the installed tree, as the files anaconda
//! would leave: lang, keyboard, timezone, network, firewall, selinux, authselect,
//! services, firstboot. Each returns a line for the log saying what it did; a command
//! the tree cannot take (a time zone it has no data for, a firewall without
//! firewalld) is an error naming it.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

use super::{run_in_tree, tree_has, write_file};
use crate::kickstart::model::{Model, Network};
use crate::sys::cmd::Cmd;

/// A value that goes into a configuration file as a word.
fn word(what: &str, value: &str, extra: &str) -> Result<()> {
    ensure!(
        !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c) || extra.contains(c)),
        "{what} `{value}`: unexpected characters"
    );
    Ok(())
}

pub fn lang(tree: &Path, lang: &str) -> Result<String> {
    word("lang", lang, "@")?;
    write_file(
        &tree.join("etc/locale.conf"),
        format!("LANG=\"{lang}\"\n").as_bytes(),
        0o644,
    )?;
    Ok(format!("lang {lang}: /etc/locale.conf"))
}

pub fn keyboard(tree: &Path, keymap: &str) -> Result<String> {
    word("keyboard", keymap, "()+,")?;
    write_file(
        &tree.join("etc/vconsole.conf"),
        format!("KEYMAP=\"{keymap}\"\n").as_bytes(),
        0o644,
    )?;
    Ok(format!("keyboard {keymap}: /etc/vconsole.conf"))
}

/// /etc/localtime → the zone's file, and /etc/adjtime saying UTC or local.
pub fn timezone(tree: &Path, zone: Option<&str>, utc: bool) -> Result<String> {
    let mut done = Vec::new();
    if let Some(zone) = zone {
        ensure!(
            !zone.starts_with('/')
                && !zone.split('/').any(|c| c == ".." || c.is_empty())
                && zone
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+-/".contains(c)),
            "timezone `{zone}`: not a time zone name"
        );
        let data = format!("usr/share/zoneinfo/{zone}");
        ensure!(
            tree.join(&data).is_file(),
            "timezone {zone}: the tree has no /{data} (is tzdata in %packages?)"
        );
        let link = tree.join("etc/localtime");
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(format!("../{data}"), &link)
            .context("linking /etc/localtime")?;
        done.push(format!("/etc/localtime → /{data}"));
    }
    let clock = if utc { "UTC" } else { "LOCAL" };
    write_file(
        &tree.join("etc/adjtime"),
        format!("0.0 0 0.0\n0\n{clock}\n").as_bytes(),
        0o644,
    )?;
    done.push(format!("hardware clock {clock}"));
    Ok(format!("timezone: {}", done.join(", ")))
}

/// dotted-quad netmask → prefix length.
fn prefix(netmask: &str) -> Result<u32> {
    if let Ok(len) = netmask.trim_start_matches('/').parse::<u32>() {
        ensure!(len <= 32, "--netmask {netmask}: not a netmask");
        return Ok(len);
    }
    let ip: std::net::Ipv4Addr = netmask
        .parse()
        .with_context(|| format!("--netmask {netmask}: not a netmask"))?;
    let bits = u32::from(ip);
    ensure!(
        bits.leading_ones() + bits.trailing_zeros() == 32,
        "--netmask {netmask}: not a contiguous netmask"
    );
    Ok(bits.leading_ones())
}

/// A NetworkManager keyfile for one `network` line; `link`, `bootif` or no device
/// give a profile that matches any Ethernet device, as an image cannot know the
/// install host's device names.
fn keyfile(n: &Network) -> Result<(String, String)> {
    let device = n
        .device
        .as_deref()
        .filter(|d| !["link", "bootif", "ibft"].contains(d));
    if let Some(device) = device {
        word("network --device", device, ":")?;
    }
    let id = device.map_or("kickstart".to_owned(), |d| d.replace(':', "-"));
    let mut s = format!("[connection]\nid={id}\ntype=ethernet\n");
    // A MAC address matches the device by address, a name by name.
    let mut ethernet = String::new();
    match device {
        Some(mac) if mac.contains(':') => ethernet = format!("\n[ethernet]\nmac-address={mac}\n"),
        Some(name) => {
            let _ = writeln!(s, "interface-name={name}");
        }
        None => {}
    }
    let _ = writeln!(s, "autoconnect={}", n.onboot.unwrap_or(true));
    s.push_str(&ethernet);
    match n.bootproto.as_deref().unwrap_or("dhcp") {
        "dhcp" | "bootp" => s.push_str("\n[ipv4]\nmethod=auto\n"),
        "static" => {
            let ip =
                n.ip.as_deref()
                    .context("network --bootproto=static needs --ip")?;
            let ip: std::net::Ipv4Addr = ip
                .parse()
                .with_context(|| format!("network --ip={ip}: not an IPv4 address"))?;
            let len = prefix(n.netmask.as_deref().unwrap_or("24"))?;
            let _ = write!(s, "\n[ipv4]\nmethod=manual\naddress1={ip}/{len}");
            if let Some(gw) = &n.gateway {
                let gw: std::net::Ipv4Addr = gw
                    .parse()
                    .with_context(|| format!("network --gateway={gw}: not an IPv4 address"))?;
                let _ = write!(s, ",{gw}");
            }
            s.push('\n');
            if let Some(ns) = &n.nameserver {
                let mut servers = Vec::new();
                for server in ns.split(',') {
                    let server: std::net::IpAddr = server.trim().parse().with_context(|| {
                        format!("network --nameserver={server}: not an IP address")
                    })?;
                    servers.push(server.to_string());
                }
                let _ = writeln!(s, "dns={};", servers.join(";"));
            }
        }
        other => {
            bail!("network --bootproto={other}: not something an image can be configured with")
        }
    }
    let v6 = if n.noipv6 { "disabled" } else { "auto" };
    let _ = writeln!(s, "\n[ipv6]\nmethod={v6}");
    Ok((id, s))
}

pub fn network(tree: &Path, lines: &[Network]) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for n in lines {
        if let Some(hostname) = &n.hostname {
            ensure!(
                hostname.len() <= 253
                    && hostname.split('.').all(|l| !l.is_empty()
                        && l.len() <= 63
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')),
                "network --hostname={hostname}: not a host name"
            );
            write_file(
                &tree.join("etc/hostname"),
                format!("{hostname}\n").as_bytes(),
                0o644,
            )?;
            done.push(format!("host name {hostname}: /etc/hostname"));
        }
        // A line with only --hostname configures no device.
        if n.device.is_none() && n.bootproto.is_none() && n.ip.is_none() && n.hostname.is_some() {
            continue;
        }
        let (id, text) = keyfile(n)?;
        let dir = tree.join("etc/NetworkManager/system-connections");
        fs::create_dir_all(&dir)?;
        let file = format!("{id}.nmconnection");
        write_file(&dir.join(&file), text.as_bytes(), 0o600)?;
        done.push(format!(
            "network {id}: /etc/NetworkManager/system-connections/{file}"
        ));
    }
    Ok(done)
}

/// `firewall`, through the tree's firewall-offline-cmd as anaconda runs it.
pub fn firewall(tree: &Path, fw: &crate::kickstart::model::Firewall) -> Result<String> {
    if fw.use_system_defaults {
        return Ok("firewall: the system's defaults kept".to_owned());
    }
    let tool = [
        "usr/bin/firewall-offline-cmd",
        "usr/sbin/firewall-offline-cmd",
    ]
    .into_iter()
    .find(|p| tree_has(tree, p));
    let Some(tool) = tool else {
        if !fw.enabled {
            return Ok(
                "firewall --disabled: no firewalld in the tree, nothing to disable".to_owned(),
            );
        }
        bail!(
            "firewall --enabled: the tree has no firewall-offline-cmd; add firewalld to %packages or use `firewall --disabled`"
        );
    };
    let mut args = vec![
        if fw.enabled {
            "--enabled"
        } else {
            "--disabled"
        }
        .to_owned(),
    ];
    if fw.enabled {
        for s in &fw.services {
            word("firewall --service", s, "")?;
            args.push(format!("--service={s}"));
        }
        for p in &fw.ports {
            word("firewall --port", p, ":/")?;
            args.push(format!("--port={p}"));
        }
        for s in &fw.remove_services {
            word("firewall --remove-service", s, "")?;
            args.push(format!("--remove-service={s}"));
        }
        if let Some(t) = &fw.trust {
            word("firewall --trust", t, "")?;
            args.push(format!("--trust={t}"));
        }
    }
    run_in_tree(tree, &format!("/{tool}"), &args)?;
    Ok(format!("firewall: firewall-offline-cmd {}", args.join(" ")))
}

/// /etc/selinux/config's SELINUX= (the policy type kept, `targeted` when none).
pub fn selinux(tree: &Path, mode: &str) -> Result<String> {
    let path = tree.join("etc/selinux/config");
    let old = fs::read_to_string(&path).unwrap_or_default();
    let mut text = String::new();
    let mut seen = false;
    for line in old.lines() {
        if line.trim_start().starts_with("SELINUX=") {
            let _ = writeln!(text, "SELINUX={mode}");
            seen = true;
        } else {
            let _ = writeln!(text, "{line}");
        }
    }
    if !seen {
        let _ = writeln!(text, "SELINUX={mode}");
    }
    if !text.contains("SELINUXTYPE=") {
        text.push_str("SELINUXTYPE=targeted\n");
    }
    fs::create_dir_all(path.parent().unwrap_or(tree))?;
    write_file(&path, text.as_bytes(), 0o644)?;
    Ok(format!("selinux {mode}: /etc/selinux/config"))
}

/// The policy type /etc/selinux/config names, and whether SELinux is on.
pub fn selinux_policy(tree: &Path) -> Option<String> {
    let text = fs::read_to_string(tree.join("etc/selinux/config")).ok()?;
    let value = |key: &str| {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix(key))
            .next_back()
            .map(|v| v.trim().trim_matches('"').to_owned())
    };
    if value("SELINUX=").as_deref() == Some("disabled") {
        return None;
    }
    value("SELINUXTYPE=")
}

pub fn authselect(tree: &Path, args: &[String]) -> Result<String> {
    ensure!(
        tree_has(tree, "usr/bin/authselect"),
        "authselect: the tree has no /usr/bin/authselect; add authselect to %packages"
    );
    for a in args {
        ensure!(
            !a.contains(['\n', '\0']),
            "authselect: an argument with a line break"
        );
    }
    run_in_tree(tree, "/usr/bin/authselect", args)?;
    Ok(format!("authselect {}", args.join(" ")))
}

/// A unit name systemctl accepts.
fn unit(name: &str) -> Result<()> {
    word("services", name, "@:\\")?;
    ensure!(!name.starts_with('-'), "services: `{name}` is not a unit");
    Ok(())
}

/// Enable or disable units with the host's `systemctl --root`, which reads the
/// units' [Install] sections from the tree.
pub fn systemctl(tree: &Path, verb: &str, units: &[String]) -> Result<()> {
    if units.is_empty() {
        return Ok(());
    }
    for u in units {
        unit(u)?;
    }
    let mut root = std::ffi::OsString::from("--root=");
    root.push(tree);
    Cmd::new("systemctl")
        .arg(root)
        .arg("--no-reload")
        .arg(verb)
        .arg("--")
        .args(units)
        .run()
        .with_context(|| format!("services --{verb}d={}", units.join(",")))?;
    Ok(())
}

pub fn services(tree: &Path, enabled: &[String], disabled: &[String]) -> Result<String> {
    systemctl(tree, "disable", disabled)?;
    systemctl(tree, "enable", enabled)?;
    Ok(format!(
        "services: enabled {}; disabled {}",
        if enabled.is_empty() {
            "none".to_owned()
        } else {
            enabled.join(", ")
        },
        if disabled.is_empty() {
            "none".to_owned()
        } else {
            disabled.join(", ")
        }
    ))
}

/// `firstboot`: initial-setup on or off.
pub fn firstboot(tree: &Path, mode: &str) -> Result<String> {
    let unit = "initial-setup.service";
    let present = ["usr/lib/systemd/system", "lib/systemd/system"]
        .iter()
        .any(|d| tree_has(tree, &format!("{d}/{unit}")));
    match (mode, present) {
        ("disable", false) => Ok("firstboot --disable: initial-setup is not installed".to_owned()),
        ("disable", true) => {
            systemctl(tree, "disable", &[unit.to_owned()])?;
            Ok("firstboot --disable: initial-setup disabled".to_owned())
        }
        (_, false) => {
            bail!("firstboot --{mode}: the tree has no {unit}; add initial-setup to %packages")
        }
        (_, true) => {
            systemctl(tree, "enable", &[unit.to_owned()])?;
            if mode == "reconfig" {
                write_file(&tree.join("etc/reconfigSys"), b"", 0o644)?;
            }
            Ok(format!("firstboot --{mode}: initial-setup enabled"))
        }
    }
}

/// Apply every system command of `model`, in anaconda's order.
pub fn apply(tree: &Path, model: &Model) -> Result<Vec<String>> {
    let mut done = Vec::new();
    if let Some(value) = &model.lang {
        done.push(lang(tree, value)?);
    }
    if let Some(keymap) = &model.keyboard {
        done.push(keyboard(tree, keymap)?);
    }
    if let Some(tz) = &model.timezone {
        done.push(timezone(tree, tz.zone.as_deref(), tz.utc)?);
    }
    done.extend(network(tree, &model.network)?);
    if let Some(fw) = &model.firewall {
        done.push(firewall(tree, fw)?);
    }
    if let Some(mode) = &model.selinux {
        done.push(selinux(tree, mode)?);
    }
    if let Some(args) = &model.authselect {
        done.push(authselect(tree, args)?);
    }
    done.extend(super::accounts::apply(tree, model)?);
    if !model.services.enabled.is_empty() || !model.services.disabled.is_empty() {
        done.push(services(
            tree,
            &model.services.enabled,
            &model.services.disabled,
        )?);
    }
    if let Some(mode) = &model.firstboot {
        done.push(firstboot(tree, mode)?);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks_become_prefixes() {
        assert_eq!(prefix("255.255.255.0").unwrap(), 24);
        assert_eq!(prefix("255.255.0.0").unwrap(), 16);
        assert_eq!(prefix("/28").unwrap(), 28);
        assert!(prefix("255.0.255.0").is_err());
        assert!(prefix("33").is_err());
    }

    #[test]
    fn static_network_is_a_manual_keyfile() {
        let n = Network {
            device: Some("eth0".into()),
            bootproto: Some("static".into()),
            hostname: None,
            ip: Some("192.0.2.10".into()),
            netmask: Some("255.255.255.0".into()),
            gateway: Some("192.0.2.1".into()),
            nameserver: Some("192.0.2.53,2001:db8::53".into()),
            activate: true,
            onboot: Some(false),
            noipv6: true,
        };
        let (id, text) = keyfile(&n).unwrap();
        assert_eq!(id, "eth0");
        assert!(
            text.contains("interface-name=eth0\nautoconnect=false\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "method=manual\naddress1=192.0.2.10/24,192.0.2.1\ndns=192.0.2.53;2001:db8::53;\n"
            ),
            "{text}"
        );
        assert!(text.contains("[ipv6]\nmethod=disabled"), "{text}");
    }

    #[test]
    fn bad_values_never_reach_files() {
        assert!(lang(Path::new("/nonexistent"), "en_US\nX=1").is_err());
        assert!(timezone(Path::new("/nonexistent"), Some("../../etc/passwd"), true).is_err());
        assert!(unit("--global").is_err());
    }
}
