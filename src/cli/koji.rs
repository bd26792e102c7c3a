//! `nodeimg koji import | refund | upload | call | imgdata`: the command line of the
//! koji client. Profiles and logins are resolved by `koji::config`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use clap::{Args, Subcommand};

use super::ReportFormat;
use crate::exit;
use crate::koji::config::Overrides;
use crate::koji::session::Session;

/// Talk to a koji hub: import a build, upload files, call a method.
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Example:
  nodeimg koji import out/ --profile koji --cg nodeimg --tag ovirt-4.5-el9-candidate
  nodeimg koji upload out/ovirt-node-ng-image-update-4.5.6-1.el9.x86_64.rpm --path nodeimg/test
  nodeimg koji call getBuild ovirt-node-ng-image-update-4.5.6-1.el9
  nodeimg koji refund out/ --profile koji
  kinit releng@FEDORAPROJECT.ORG && nodeimg koji call getLoggedInUser -p fedora")]
pub enum KojiCommand {
    Import(ImportArgs),
    Refund(RefundArgs),
    Upload(UploadArgs),
    Call(CallArgs),
    Imgdata(ImgdataArgs),
}

/// Which hub and how to log in: a profile of koji's configuration, or options.
#[derive(Debug, Args)]
pub struct Connection {
    /// The profile in koji's configuration (/etc/koji.conf, ~/.koji/config, their
    /// .d directories), as `koji -p NAME`.
    #[arg(long, short = 'p', default_value = "koji", value_name = "NAME")]
    pub profile: String,

    /// Read only this configuration file (as `koji -c FILE`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The hub's URL; with it no configuration file is read.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,

    /// Client certificate (PEM with its key, or with --key) for sslLogin.
    #[arg(long, value_name = "PEM")]
    pub cert: Option<PathBuf>,

    /// The client certificate's key, when not in --cert's file.
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,

    /// CA bundle the hub's certificate must chain to (only it is trusted).
    #[arg(long, value_name = "PEM")]
    pub serverca: Option<PathBuf>,

    /// User for password login (development hubs).
    #[arg(long, value_name = "NAME", conflicts_with = "cert")]
    pub user: Option<String>,

    /// File holding the password for --user (never on the command line).
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,

    /// Kerberos login as this principal (NAME@REALM): its ticket from the credential
    /// cache collection (kinit), or from --keytab.
    #[arg(long, value_name = "NAME@REALM", conflicts_with_all = ["cert", "user"])]
    pub principal: Option<String>,

    /// Kerberos login with this keytab's key for --principal (unattended use).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cert", "user"])]
    pub keytab: Option<PathBuf>,

    /// Log in this way whatever the profile says (koji's --authtype); kerberos uses
    /// the credential cache (kinit) unless --principal/--keytab say otherwise.
    #[arg(long, value_enum, value_name = "TYPE")]
    pub authtype: Option<crate::koji::config::AuthType>,

    /// Act as this koji user (a proxy login: the hub must list the logged-in principal
    /// in ProxyPrincipals, or the certificate in ProxyDNs).
    #[arg(long, value_name = "USER")]
    pub runas: Option<String>,

    /// Retries of a call after connection errors (koji's max_retries).
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,

    /// Longest wait between retries, seconds (koji's retry_interval).
    #[arg(long, value_name = "SECONDS")]
    pub retry_interval: Option<f64>,
}

impl Connection {
    /// What the options say over the profile.
    pub fn overrides(&self) -> Result<Overrides> {
        Ok(Overrides {
            profile: self.profile.clone(),
            config: self.config.clone(),
            server: self.server.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            serverca: self.serverca.clone(),
            user: self.user.clone(),
            password_file: self.password_file.clone(),
            principal: self.principal.clone(),
            keytab: self.keytab.clone(),
            runas: self.runas.clone(),
            authtype: self.authtype,
            retries: self.retries,
            retry_interval: self
                .retry_interval
                .map(|s| {
                    Duration::try_from_secs_f64(s)
                        .with_context(|| format!("--retry-interval {s}: not a number of seconds"))
                })
                .transpose()?,
        })
    }

    fn session(&self) -> Result<Session> {
        Session::new(self.overrides()?.resolve()?)
    }
}

/// Import a build's OUTDIR into koji as a content generator's build.
///
/// The build is named after the update RPM's source package
/// (ovirt-node-ng-image-update-V-R: koji takes an RPM only into the build its
/// SOURCERPM names) and holds the image, the update RPM and the logs. Reserves the NVR
/// (CGInitBuild) and writes the reservation to OUTDIR/koji-reservation.json, uploads
/// the image, the update RPM, the manifests, build.json and the logs to a directory of
/// their own, imports them with metadata made from build.json (CGImport: the image as
/// an image archive with its arch and the RPMs inside it as components, the update
/// RPM, the logs), then tags the build with --tag. When anything fails after the
/// reservation the build is refunded (FAILED); when the refund fails too, the
/// reservation stays in OUTDIR and running this again resumes the import (or `nodeimg
/// koji refund OUTDIR` releases it). The user needs the content generator's access (an
/// admin runs `koji grant-cg-access USER CG`).
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  nodeimg koji import out/ --profile koji --cg nodeimg --tag ovirt-4.5-el9-candidate
  nodeimg koji import out/ --server https://koji.example/kojihub --cert ~/.koji/client.pem \\
    --serverca /etc/pki/koji-ca.pem --source git+https://github.com/oVirt/ovirt-node-ng-image#abc123")]
pub struct ImportArgs {
    /// A nodeimg build's artifacts directory (with build.json).
    #[arg(value_name = "OUTDIR")]
    pub outdir: PathBuf,

    #[command(flatten)]
    pub connection: Connection,

    /// The content generator to import as.
    #[arg(long, default_value = "nodeimg", value_name = "NAME")]
    pub cg: String,

    /// Tag the imported build.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,

    /// The build's source (default: the kickstart's path and SHA-256).
    #[arg(long, value_name = "URL")]
    pub source: Option<String>,

    #[command(flatten)]
    pub transfer: Transfer,

    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// Release the build an interrupted import left reserved in OUTDIR.
///
/// Reads OUTDIR/koji-reservation.json (written by `nodeimg koji import` before its
/// first upload and kept when neither the import nor its refund could finish), calls
/// CGRefundBuild with its token, and removes the file. A build that has ended already
/// is left as it is.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  nodeimg koji refund out/ --profile koji
  nodeimg koji refund out/ --profile koji --state canceled")]
pub struct RefundArgs {
    /// The OUTDIR of the interrupted import.
    #[arg(value_name = "OUTDIR")]
    pub outdir: PathBuf,

    #[command(flatten)]
    pub connection: Connection,

    /// The state the build ends in.
    #[arg(long, value_enum, default_value_t = RefundState::Failed)]
    pub state: RefundState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RefundState {
    Failed,
    Canceled,
}

/// Upload files to the hub's work directory with koji's fast-upload protocol.
///
/// Chunks are checked (size and adler32) as they go and the whole file (size and
/// SHA-256, checkUpload) at the end. An upload that was cut off resumes where the hub's
/// copy ends when that copy is a prefix of the file.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  nodeimg koji upload out/*.squashfs out/*.rpm --path nodeimg/ovirt-node-ng-image-4.5.6-1.el9")]
pub struct UploadArgs {
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// The directory under the hub's work directory.
    #[arg(long, value_name = "DIR")]
    pub path: String,

    #[command(flatten)]
    pub connection: Connection,

    #[command(flatten)]
    pub transfer: Transfer,

    /// The check of the whole file at the end: the hub's SHA-256 (it reads the file
    /// again), or its size only, as koji's own client checks.
    #[arg(long, value_enum, default_value_t = crate::koji::upload::FinalCheck::Sha256)]
    pub final_check: crate::koji::upload::FinalCheck,

    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// How files go up to the hub; shared by `import` and `upload`.
#[derive(Debug, Args)]
pub struct Transfer {
    /// Upload chunk size in bytes (default: the profile's upload_blocksize, else 8 MiB;
    /// koji's own client sends 1 MiB).
    #[arg(long, value_name = "BYTES")]
    pub chunk_size: Option<usize>,

    /// How many files upload at once, each on a koji subsession of the login (one
    /// file's chunks always go in order: the hub locks a file while it takes one).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16), value_name = "N")]
    pub parallel: u16,
}

impl Transfer {
    fn chunk(&self, session: &Session) -> usize {
        self.chunk_size.unwrap_or(session.profile.upload_blocksize)
    }
}

/// Call a hub method and print its result as JSON.
///
/// Each ARG is JSON when it parses as JSON (numbers, null, true, lists, objects, quoted
/// strings), else a string. --kwarg KEY=VALUE passes keyword arguments the same way.
/// Logs in first when the profile or options give credentials.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  nodeimg koji call getBuild ovirt-node-ng-image-4.5.6-1.el9
  nodeimg koji call listTagged ovirt-4.5-el9 --kwarg latest=true")]
pub struct CallArgs {
    #[arg(value_name = "METHOD")]
    pub method: String,

    /// Arguments (after `--` when one starts with `-`, a negative number say).
    #[arg(value_name = "ARG")]
    pub args: Vec<String>,

    /// A keyword argument, KEY=VALUE.
    #[arg(long = "kwarg", value_name = "KEY=VALUE")]
    pub kwargs: Vec<String>,

    #[command(flatten)]
    pub connection: Connection,
}

/// Print what koji's image import wants to know of a build's OUTDIR, as JSON.
///
/// For the builder plugin: the image file, the update RPM, the other outputs to keep as
/// logs, the arch, name, version and release, and the image's packages as the rpmlist
/// that `completeImageBuild` records (with `payloadhash` = SIGMD5). Read from the typed
/// build.json; every listed file must be in OUTDIR at its recorded size.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  nodeimg koji imgdata out/ | jq .files
  nodeimg koji imgdata out/ -o imgdata.json")]
pub struct ImgdataArgs {
    /// A nodeimg build's artifacts directory (with build.json).
    #[arg(value_name = "OUTDIR")]
    pub outdir: PathBuf,

    /// Write the JSON here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(command: KojiCommand) -> Result<ExitCode> {
    match command {
        KojiCommand::Import(args) => import(args),
        KojiCommand::Refund(args) => refund(args),
        KojiCommand::Upload(args) => upload(args),
        KojiCommand::Call(args) => call(args),
        KojiCommand::Imgdata(args) => imgdata(args),
    }
}

fn import(args: ImportArgs) -> Result<ExitCode> {
    let mut session = args.connection.session()?;
    let chunk = args.transfer.chunk(&session);
    let imported = crate::koji::cg::import(
        &mut session,
        &crate::koji::cg::ImportOptions {
            outdir: &args.outdir,
            cg: &args.cg,
            tag: args.tag.as_deref(),
            source: args.source.as_deref(),
            chunk,
            parallel: usize::from(args.transfer.parallel),
        },
    )?;
    match args.format {
        ReportFormat::Text => {
            println!(
                "{}: build {} ({} files in {})",
                imported.nvr,
                imported.build_id,
                imported.uploads.len(),
                imported.directory
            );
            if let (Some(task), Some(tag)) = (imported.tag_task, &args.tag) {
                println!("tagging into {tag}: task {task}");
            }
        }
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&imported)?),
    }
    Ok(ExitCode::from(exit::SUCCESS))
}

fn refund(args: RefundArgs) -> Result<ExitCode> {
    let mut session = args.connection.session()?;
    let state = match args.state {
        RefundState::Failed => crate::koji::cg::FAILED,
        RefundState::Canceled => crate::koji::cg::CANCELED,
    };
    let r = crate::koji::cg::refund(&mut session, &args.outdir, state)?;
    println!("{}: build {} released", r.nvr, r.build_id);
    Ok(ExitCode::from(exit::SUCCESS))
}

fn upload(args: UploadArgs) -> Result<ExitCode> {
    let mut session = args.connection.session()?;
    session.login()?;
    let chunk = args.transfer.chunk(&session);
    let mut files = Vec::new();
    for file in &args.files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: no usable file name", file.display()))?;
        ensure!(
            !files.iter().any(|(_, n)| n == name),
            "{name} is given twice: the hub keeps one file of a name in {}",
            args.path
        );
        files.push((file.clone(), name.to_owned()));
    }
    let done = crate::koji::upload::upload_files(
        &mut session,
        &files,
        &args.path,
        chunk,
        args.final_check,
        usize::from(args.transfer.parallel),
    )?;
    match args.format {
        ReportFormat::Text => {
            for up in &done {
                println!("{}: {} bytes, sha256 {}", up.path, up.bytes, up.sha256);
            }
        }
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&done)?),
    }
    Ok(ExitCode::from(exit::SUCCESS))
}

fn call(args: CallArgs) -> Result<ExitCode> {
    let mut session = args.connection.session()?;
    session.login()?;
    let params = args
        .args
        .iter()
        .map(|a| crate::koji::value_from_arg(a))
        .collect::<Result<Vec<_>>>()?;
    let mut kwargs = Vec::new();
    for kw in &args.kwargs {
        let (key, value) = kw
            .split_once('=')
            .with_context(|| format!("--kwarg {kw}: expected KEY=VALUE"))?;
        kwargs.push((key, crate::koji::value_from_arg(value)?));
    }
    let value = session.call(&args.method, &params, &kwargs)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&crate::koji::xmlrpc::to_json(&value))?
    );
    Ok(ExitCode::from(exit::SUCCESS))
}

fn imgdata(args: ImgdataArgs) -> Result<ExitCode> {
    let data = crate::koji::imgdata::ImageData::of(&args.outdir)?;
    let json = serde_json::to_string_pretty(&data)? + "\n";
    match &args.output {
        None => print!("{json}"),
        Some(target) => {
            let partial = crate::artifacts::PartialFile::new(target, true)?;
            std::fs::write(partial.path(), json)
                .with_context(|| format!("writing {}", partial.path().display()))?;
            partial.commit()?;
        }
    }
    Ok(ExitCode::from(exit::SUCCESS))
}
