//! A bill of materials for a Node image: SPDX 2.3 JSON and CycloneDX 1.5 JSON. The
//! image is the described root (file name, SHA-256); each installed RPM is a package
//! with its EVR, license, `pkg:rpm` purl (namespace from os-release's ID, `arch`,
//! `epoch` and `distro` qualifiers), source RPM, SIGMD5 and payload SHA-256.
//!
//! RPM `License:` fields are SPDX expressions only since Fedora 38 and EL10 (EL9 has
//! "GPLv3+" and the like), so in SPDX each distinct one is a `LicenseRef-` with the
//! original text, which every validator accepts; CycloneDX takes it as a license name.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::image::Inspection;
use crate::image::rpmdb::Package;

/// The image the document describes.
pub struct Subject<'a> {
    /// Its file name.
    pub name: &'a str,
    pub sha256: &'a str,
    /// Its version (the update's V-R, or the imgbased NVR), when known.
    pub version: Option<&'a str>,
    /// When the document is made (seconds since 1970; SOURCE_DATE_EPOCH pins it).
    pub created: u64,
}

/// Which format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.5 JSON.
    Cyclonedx,
}

/// The document in `format`.
pub fn document(format: Format, image: &Subject, inspection: &Inspection) -> Value {
    match format {
        Format::Spdx => spdx(image, inspection),
        Format::Cyclonedx => cyclonedx(image, inspection),
    }
}

/// What purl spells literally in a segment; everything else is percent-encoded.
fn purl_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"._-~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `pkg:rpm/centos/bash@5.1.8-9.el9?arch=x86_64&distro=centos-9`.
pub fn purl(p: &Package, inspection: &Inspection) -> String {
    let os = inspection.os_release.as_ref();
    let namespace = os.and_then(|o| o.id.as_deref()).unwrap_or("rpm");
    let mut qualifiers = vec![format!("arch={}", purl_encode(&p.arch))];
    if let Some(epoch) = p.epoch.filter(|e| *e > 0) {
        qualifiers.push(format!("epoch={epoch}"));
    }
    if let Some(o) = os
        && let (Some(id), Some(version)) = (&o.id, &o.version_id)
    {
        qualifiers.push(format!(
            "distro={}",
            purl_encode(&format!("{id}-{version}"))
        ));
    }
    format!(
        "pkg:rpm/{}/{}@{}?{}",
        purl_encode(&namespace.to_ascii_lowercase()),
        purl_encode(&p.name),
        purl_encode(&format!("{}-{}", p.version, p.release)),
        qualifiers.join("&")
    )
}

/// An SPDX id from any text: letters, digits, `.` and `-`.
fn spdx_id(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Each distinct license text as a `LicenseRef-`, unique.
fn license_refs(packages: &[Package]) -> BTreeMap<&str, String> {
    let mut refs: BTreeMap<&str, String> = BTreeMap::new();
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    for license in packages.iter().filter_map(|p| p.license.as_deref()) {
        if refs.contains_key(license) || license.trim().is_empty() {
            continue;
        }
        let base = format!("LicenseRef-{}", spdx_id(license.trim()));
        let n = used.entry(base.clone()).or_default();
        *n += 1;
        let id = if *n == 1 { base } else { format!("{base}-{n}") };
        refs.insert(license, id);
    }
    refs
}

fn rpm_comment(p: &Package) -> String {
    let mut facts = Vec::new();
    if let Some(sigmd5) = &p.sigmd5 {
        facts.push(format!("SIGMD5 {sigmd5}"));
    }
    if let Some(digest) = &p.payload_digest {
        facts.push(format!("payload SHA-256 {digest}"));
    }
    match &p.sigkey {
        Some(key) => facts.push(format!("signed with key {key}")),
        None => facts.push("unsigned".to_owned()),
    }
    format!("rpm: {}", facts.join(", "))
}

/// SPDX 2.3 JSON.
pub fn spdx(image: &Subject, inspection: &Inspection) -> Value {
    let refs = license_refs(&inspection.packages);
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": image.name,
        "versionInfo": image.version.unwrap_or("NOASSERTION"),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "OPERATING-SYSTEM",
        "checksums": [{"algorithm": "SHA256", "checksumValue": image.sha256}],
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    for (i, p) in inspection.packages.iter().enumerate() {
        let id = format!("SPDXRef-RPM-{}-{i}", spdx_id(&p.name));
        let license = p
            .license
            .as_deref()
            .and_then(|l| refs.get(l))
            .map_or("NOASSERTION", String::as_str);
        let mut package = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.evr(),
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "LIBRARY",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": license,
            "copyrightText": "NOASSERTION",
            "comment": rpm_comment(p),
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl(p, inspection),
            }],
        });
        if let Some(source) = &p.sourcerpm {
            package["sourceInfo"] = json!(format!("built from the source package {source}"));
        }
        packages.push(package);
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    let extracted: Vec<Value> = refs
        .iter()
        .map(|(text, id)| {
            json!({
                "licenseId": id,
                "extractedText": text,
                "name": text,
                "comment": "the License: field of the RPM header, as it is",
            })
        })
        .collect();
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image.name,
        "documentNamespace": format!(
            "https://www.ovirt.org/spdxdocs/nodeimg/{}-{}",
            spdx_id(image.name),
            image.sha256
        ),
        "creationInfo": {
            "created": crate::units::iso8601(image.created),
            "creators": [format!("Tool: nodeimg-{}", env!("CARGO_PKG_VERSION"))],
        },
        "documentDescribes": ["SPDXRef-Image"],
        "packages": packages,
        "relationships": relationships,
        "hasExtractedLicensingInfos": extracted,
    })
}

/// A UUID (version 4 layout) derived from the image's digest: the same image gives the
/// same serial number, as a reproducible build wants.
fn serial_number(image: &Subject) -> String {
    let digest = Sha256::digest(format!("nodeimg-cyclonedx:{}", image.sha256).as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// CycloneDX 1.5 JSON.
pub fn cyclonedx(image: &Subject, inspection: &Inspection) -> Value {
    let mut components = Vec::new();
    let mut refs = Vec::new();
    for (i, p) in inspection.packages.iter().enumerate() {
        let bom_ref = format!("rpm-{i}-{}", p.name);
        let mut properties = Vec::new();
        for (name, value) in [
            ("rpm:sigmd5", &p.sigmd5),
            ("rpm:payload-sha256", &p.payload_digest),
            ("rpm:sourcerpm", &p.sourcerpm),
            ("rpm:sigkey", &p.sigkey),
        ] {
            if let Some(value) = value {
                properties.push(json!({"name": name, "value": value}));
            }
        }
        let mut component = json!({
            "type": "library",
            "bom-ref": bom_ref,
            "name": p.name,
            "version": p.evr(),
            "purl": purl(p, inspection),
            "properties": properties,
        });
        if let Some(license) = p.license.as_deref().filter(|l| !l.trim().is_empty()) {
            component["licenses"] = json!([{"license": {"name": license}}]);
        }
        components.push(component);
        refs.push(bom_ref);
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial_number(image),
        "version": 1,
        "metadata": {
            "timestamp": crate::units::iso8601(image.created),
            "tools": {"components": [{
                "type": "application",
                "name": "nodeimg",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {
                "type": "operating-system",
                "bom-ref": "image",
                "name": image.name,
                "version": image.version.unwrap_or(""),
                "hashes": [{"alg": "SHA-256", "content": image.sha256}],
            },
        },
        "components": components,
        "dependencies": [{"ref": "image", "dependsOn": refs}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_encode_what_purl_reserves() {
        assert_eq!(purl_encode("libstdc++"), "libstdc%2B%2B");
        assert_eq!(purl_encode("5.1.8-9.el9"), "5.1.8-9.el9");
        assert_eq!(
            spdx_id("GPLv2+ and (MIT or BSD)"),
            "GPLv2--and--MIT-or-BSD-"
        );
    }

    #[test]
    fn serial_numbers_are_uuids_of_the_image() {
        let image = Subject {
            name: "i",
            sha256: "ab",
            version: None,
            created: 0,
        };
        let serial = serial_number(&image);
        assert_eq!(serial, serial_number(&image));
        let uuid = serial.strip_prefix("urn:uuid:").unwrap();
        let parts: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!("89ab".contains(&parts[3][..1]));
    }
}
