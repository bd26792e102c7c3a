"""A real MIT Kerberos KDC for the Kerberos tests: Debian's krb5-kdc (krb5kdc) with
databases made by kdb5_util and principals by kadmin.local (krb5-admin-server), in a
directory of its own, listening on one loopback port.

Two realms share the KDC: NODEIMG.TEST, the hub's, and OTHER.TEST, which the hub's
realm trusts (krbtgt/NODEIMG.TEST@OTHER.TEST in both databases, same key), so that a
principal of another realm can reach the hub with a valid ticket and be refused by
the hub's AllowedKrbRealms, as on a production hub.

Nothing outside the directory is read or written: the programs and every client
started with `env()` get KRB5_CONFIG and KRB5_KDC_PROFILE pointing into it, and a
default credential cache and keytabs inside it.
"""

import os
import subprocess

REALM = "NODEIMG.TEST"
OTHER_REALM = "OTHER.TEST"
# Test-only secrets: the databases live and die with the test's directory.
MASTER_PASSWORD = "kdc-master-secret"
TRUST_PASSWORD = "cross-realm-secret"


class Kdc:
    def __init__(self, root, port, log):
        self.root = root
        self.port = port
        self.log = log
        os.makedirs(root, exist_ok=True)
        self.krb5_conf = os.path.join(root, "krb5.conf")
        self.kdc_conf = os.path.join(root, "kdc.conf")
        with open(self.krb5_conf, "w") as f:
            f.write(
                "[libdefaults]\n"
                "  default_realm = %(realm)s\n"
                "  dns_lookup_kdc = false\n"
                "  dns_lookup_realm = false\n"
                # The hub is https://localhost: its principal is HTTP/localhost, with no
                # DNS in between (koji leaves canonicalization to these two settings).
                "  rdns = false\n"
                "  dns_canonicalize_hostname = false\n"
                "  udp_preference_limit = 1\n"
                "  default_ccache_name = FILE:%(root)s/ccache-default\n"
                "  default_client_keytab_name = FILE:%(root)s/client-default.keytab\n"
                "  default_keytab_name = FILE:%(root)s/default.keytab\n"
                "[realms]\n"
                "  %(realm)s = {\n    kdc = 127.0.0.1:%(port)d\n  }\n"
                "  %(other)s = {\n    kdc = 127.0.0.1:%(port)d\n  }\n"
                "[domain_realm]\n"
                "  localhost = %(realm)s\n"
                % {"realm": REALM, "other": OTHER_REALM, "root": root, "port": port})
        with open(self.kdc_conf, "w") as f:
            f.write("[kdcdefaults]\n  kdc_listen = 127.0.0.1:%d\n  kdc_tcp_listen = 127.0.0.1:%d\n"
                    "[realms]\n" % (port, port))
            for realm in (REALM, OTHER_REALM):
                db = os.path.join(root, realm)
                os.makedirs(db, exist_ok=True)
                f.write("  %s = {\n    database_name = %s/principal\n"
                        "    key_stash_file = %s/stash\n    acl_file = %s/kadm5.acl\n"
                        "    max_life = 10h\n    max_renewable_life = 0\n  }\n"
                        % (realm, db, db, db))
            f.write("[logging]\n  kdc = FILE:%s\n" % log)

    def env(self, **extra):
        """The environment of a program that uses this KDC and nothing else."""
        env = dict(os.environ, KRB5_CONFIG=self.krb5_conf, KRB5_KDC_PROFILE=self.kdc_conf,
                   KRB5CCNAME="FILE:%s/ccache-default" % self.root)
        env.pop("KRB5_CLIENT_KTNAME", None)
        env.pop("KRB5_KTNAME", None)
        env.update(extra)
        return env

    def run(self, *cmd, **kw):
        return subprocess.run(list(cmd), env=self.env(), check=True, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)

    def kadmin(self, realm, query):
        """One kadmin.local query (fixed strings of the harness only)."""
        out = self.run("kadmin.local", "-r", realm, "-q", query).stdout
        if "error" in out.lower() or "failed" in out.lower():
            raise RuntimeError("kadmin.local -r %s -q %r: %s" % (realm, query, out))
        return out

    def start(self):
        """Make the databases and the trust, then start krb5kdc: its process, which the
        caller stops."""
        for realm in (REALM, OTHER_REALM):
            self.run("kdb5_util", "-r", realm, "create", "-s", "-W", "-P", MASTER_PASSWORD)
        # The trust: OTHER.TEST's principals may get tickets for NODEIMG.TEST's services.
        for realm in (REALM, OTHER_REALM):
            self.kadmin(realm, "addprinc -pw %s krbtgt/%s@%s" % (TRUST_PASSWORD, REALM,
                                                                   OTHER_REALM))
        return subprocess.Popen(["krb5kdc", "-n", "-r", REALM, "-r", OTHER_REALM],
                                     env=self.env(), stdout=open(self.log, "a"),
                                     stderr=subprocess.STDOUT)

    def add_user(self, name, password, realm=REALM):
        self.kadmin(realm, "addprinc -pw %s %s@%s" % (password, name, realm))
        return "%s@%s" % (name, realm)

    def add_service(self, service, keytab):
        """A service principal with random keys, exported to KEYTAB."""
        principal = "%s@%s" % (service, REALM)
        self.kadmin(REALM, "addprinc -randkey %s" % principal)
        self.kadmin(REALM, "ktadd -k %s %s" % (keytab, principal))
        os.chmod(keytab, 0o600)
        return principal

    def export_keytab(self, principal, keytab):
        """KEYTAB holding PRINCIPAL's current keys (its password stays valid)."""
        realm = principal.rsplit("@", 1)[1]
        self.kadmin(realm, "ktadd -norandkey -k %s %s" % (keytab, principal))
        os.chmod(keytab, 0o600)

    def max_life(self, principal, life):
        realm = principal.rsplit("@", 1)[1]
        self.kadmin(realm, 'modprinc -maxlife "%s" %s' % (life, principal))

    def kinit(self, principal, password, ccache, lifetime=None):
        """A credential cache holding PRINCIPAL's ticket, as `kinit` makes it."""
        cmd = ["kinit", "-c", ccache]
        if lifetime:
            cmd += ["-l", lifetime]
        subprocess.run(cmd + [principal], env=self.env(), input=password + "\n", text=True,
                       check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
