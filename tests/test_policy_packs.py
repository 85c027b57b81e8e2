"""The policy packs beside pr-writer: readonly, infra-review, sql-explorer, docs-writer.

Each pack has a table of cases, shell lines (decided with ``decide_line`` from
/workspace) and HTTP-style actions (``decide_action``), with the decision and the rule
that must give it. The tables include the tricky spellings: wrappers (sudo, bash -c,
env X=1), secrets reached through a redirection or a shell glob, allow rules whose
paths or arguments must *all* match, redirections judged by their operator and target
(``2>/dev/null`` is not a write), option values written attached (``-nprod``) or as
one token (``--dry-run=client``), environment values, and file targets that only
escape a directory once made canonical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from policy_helpers import PACKS, decide_action, decide_line, pack

from aegisflow.policy.engine import Decision

Case = tuple[str | dict[str, Any], str, str]


def act(
    protocol: str,
    tool: str,
    target: str = "",
    capability: str = "read",
    **parameters: Any,
) -> dict[str, Any]:
    """An HTTP-style action."""
    data: dict[str, Any] = {
        "protocol": protocol,
        "tool": tool,
        "target": target,
        "capability": capability,
    }
    if parameters:
        data["parameters"] = parameters
    return data


def decide(name: str, case: str | dict[str, Any]) -> Decision:
    if isinstance(case, str):
        return decide_line(pack(name), case)[1]
    return decide_action(pack(name), case)


def case_id(case: Case) -> str:
    given = case[0]
    if isinstance(given, str):
        return given
    return f"{given['tool']} {given['target']}".strip()


def check(name: str, given: str | dict[str, Any], decision: str, rule: str) -> None:
    result = decide(name, given)
    assert (result.decision, result.matched_rule) == (decision, rule), result.reason
    assert result.policy == name


# -------------------------------------------------------------------------- readonly

READONLY: list[Case] = [
    # GitHub, files, SQL and HTTP
    (act("git", "github.get_file_contents", "acme/api"), "allow", "github-reads"),
    (act("mcp", "github.search_code", "acme/api"), "allow", "github-reads"),
    (
        act("mcp", "github.create_pull_request", "acme/api", "write"),
        "block",
        "github-writes",
    ),
    (act("file", "file.read", "/workspace/src/app.py"), "allow", "file:file.read"),
    (act("file", "file.read", "/workspace/config/.env.local"), "block", "secrets-unreadable"),
    (act("file", "file.write", "/workspace/README.md", "write"), "review", "file-writes"),
    (act("file", "file.delete", "/workspace/tmp.txt", "delete"), "block", "file:file.delete"),
    # file targets are canonical: ~/.ssh/../notes.txt is ~/notes.txt
    (act("file", "file.read", "~/.ssh/../notes.txt"), "allow", "file:file.read"),
    (act("file", "file.read", "/workspace/docs/../.env"), "block", "secrets-unreadable"),
    (act("sql", "sql.select", "public.orders"), "allow", "sql-reads"),
    (act("sql", "sql.update", "public.orders", "write"), "block", "sql-writes"),
    (act("http", "http.get", "https://docs.python.org/3/"), "allow", "http-reads"),
    (
        act("http", "http.get", "http://169.254.169.254/latest/meta-data/iam"),
        "block",
        "cloud-metadata",
    ),
    (act("http", "http.get", "http://169.254.169.254:80/latest/"), "block", "cloud-metadata"),
    (act("http", "http.post", "https://api.example.com/q", "write"), "review", "http-writes"),
    # reading in the shell
    ("ls -la src", "allow", "read-only-programs"),
    ("grep -rn TODO src | head -20", "allow", "read-only-programs"),
    ("find . -name '*.py' -newer setup.cfg", "allow", "read-only-programs"),
    ("git log --oneline -20", "allow", "git-read"),
    ("git -C repo blame src/app.py", "allow", "git-read"),
    ("gh pr view 12", "allow", "gh-reads"),
    # output to /dev/null writes nothing; 2>&1 and >&2 are not redirections at all
    ("cat README.md 2>/dev/null", "allow", "read-only-programs"),
    ("cat README.md > /dev/null 2>&1", "allow", "read-only-programs"),
    ("grep -rn TODO src 2>/dev/null | head -5", "allow", "read-only-programs"),
    ("ls missing &>/dev/null", "allow", "read-only-programs"),
    ("echo x >> /dev/null", "allow", "read-only-programs"),
    ("cat README.md >&2", "allow", "read-only-programs"),
    ("echo '->' | grep '>'", "allow", "read-only-programs"),
    # wrappers are looked through
    ("env LC_ALL=C cat README.md", "allow", "read-only-programs"),
    ("sudo cat /etc/hosts", "block", "privilege-escalation"),
    ("bash -c 'cat README.md; rm -rf build'", "block", "destructive-programs"),
    ("timeout 5 rm -rf build", "block", "destructive-programs"),
    ("env", "block", "environment-dump"),
    # secrets, also through redirections and shell globs
    ("cat README.md > .env", "block", "secrets-unreadable"),
    ("head -c 100 < ~/.aws/credentials", "block", "secrets-unreadable"),
    ("cat .e*", "block", "secrets-unreadable"),
    ("cat $HOME/.ssh/id_ed25519", "block", "secrets-unreadable"),
    # writing, deleting and running code
    ("cat README.md > notes.txt", "review", "write-redirect"),
    ("cat a >/tmp/copy", "review", "write-redirect"),
    ("cat a 2>/dev/null > notes.txt", "review", "write-redirect"),
    ("cat a >/dev/null 2>errors.log", "review", "write-redirect"),
    ("cat a >> notes.txt", "review", "write-redirect"),
    ("cat a &>> notes.txt", "review", "write-redirect"),
    ("cat a >| notes.txt", "review", "write-redirect"),
    ("cat a <> notes.txt", "review", "write-redirect"),
    ("cat a > //dev/null", "review", "write-redirect"),
    ("cat a > /dev/null.bak", "review", "write-redirect"),
    ("cat a > ~/notes.txt", "review", "write-redirect"),
    ("> notes.txt", "review", "write-redirect"),
    ("cat a > $OUT", "block", "secrets-unreadable"),
    ("sed -i s/a/b/ README.md", "review", "writes-files"),
    ("find . -name '*.pyc' -delete", "block", "find-delete"),
    ("find . -name '*.py' -fprint /tmp/list", "review", "find-writes"),
    ("rg --pre ./decode.sh secret", "review", "rg-preprocessor"),
    ("jq -n env", "review", "jq-environment"),
    ("pytest -q", "review", "runs-code"),
    ("python -m pytest tests", "review", "runs-code"),
    ("make test", "review", "runs-code"),
    ("git commit -m wip", "review", "shell:shell.git"),
    ("git push origin feat/x", "block", "git-push"),
    ("git -c core.pager=./x.sh log", "review", "git-config-override"),
    ("git diff --output=/tmp/x.patch", "review", "git-output-file"),
    ("PAGER=./x.sh git log", "review", "pager-override"),
    ("gh pr create --fill", "block", "shell:shell.gh"),
    ("curl -s https://example.com", "review", "network-tools"),
    ("kubectl get pods", "block", "default"),
    # unparseable input names the builtin, even though the default is as strict
    ("echo 'unterminated", "block", "builtin:shell-unparseable"),
    ("$CMD README.md", "block", "builtin:shell-unknown-program"),
]


@pytest.mark.parametrize(("given", "decision", "rule"), READONLY, ids=map(case_id, READONLY))
def test_readonly(given: str | dict[str, Any], decision: str, rule: str) -> None:
    check("readonly", given, decision, rule)


# -------------------------------------------------------------------------- infra-review

INFRA: list[Case] = [
    # Terraform
    ("terraform plan -out=tf.plan", "allow", "terraform-plan"),
    ("terraform fmt -recursive", "allow", "terraform-plan"),
    ("terraform -chdir=envs/dev validate", "allow", "terraform-plan"),
    ("terraform output", "allow", "terraform-plan"),
    ("terraform plan -destroy -out=gone.plan", "allow", "terraform-plan"),
    ("terraform output -json", "review", "terraform-sensitive-output"),
    ("terraform apply tf.plan", "review", "terraform-apply"),
    ("terraform apply -destroy", "block", "terraform-apply-destroy"),
    ("terraform apply --destroy -auto-approve", "block", "terraform-apply-destroy"),
    ("terraform -chdir=envs/dev destroy", "block", "terraform-destroy"),
    ("terraform state rm aws_s3_bucket.logs", "block", "terraform-state-destructive"),
    ("cat envs/prod/terraform.tfstate", "block", "infra-secrets"),
    # environment variables are compared by value
    ("env TF_CLI_ARGS_apply=-destroy terraform apply", "block", "terraform-cli-args-destroy"),
    ("TF_CLI_ARGS=-no-color terraform plan", "review", "terraform-cli-args"),
    ("TF_WORKSPACE=staging terraform plan", "allow", "terraform-plan"),
    ("TF_WORKSPACE=prod terraform plan", "review", "workspace-in-environment"),
    ("TF_WORKSPACE=$WS terraform plan", "review", "workspace-in-environment"),
    ("TF_WORKSPACE=prod; terraform plan", "review", "workspace-in-environment"),
    ("HELM_NAMESPACE=dev helm list", "allow", "helm-reads"),
    ("HELM_NAMESPACE=production helm list", "review", "namespace-in-environment"),
    ("bash -c 'terraform destroy -auto-approve'", "block", "terraform-destroy"),
    ("sudo terraform apply", "block", "privilege-escalation"),
    # kubectl; option values are paths, which is how prod is seen
    ("kubectl get pods -n staging", "allow", "kubectl-reads"),
    ("kubectl logs deploy/api -f", "allow", "kubectl-reads"),
    ("kubectl get pods -n prod", "review", "kubectl-prod"),
    ("kubectl get pods -nprod", "review", "kubectl-prod"),
    ("kubectl -nprod get pods", "review", "kubectl-prod"),
    ("kubectl get pods -nstaging", "allow", "kubectl-reads"),
    ("kubectl --context prod-eu-1 describe deploy api", "review", "kubectl-prod"),
    ("kubectl logs deploy/api --namespace=production", "review", "kubectl-prod"),
    ("kubectl get pods -n $NS", "block", "secrets-unreadable"),
    ("KUBECONFIG=~/.kube/prod.yaml kubectl get pods", "review", "cluster-selection-in-environment"),
    ("kubectl get pods --token abc123", "block", "kubectl-credentials"),
    ("kubectl get secret db-creds -o yaml", "block", "kubectl-secrets"),
    ("kubectl get configmaps,secrets", "block", "kubectl-secrets"),
    ("kubectl config view --raw", "block", "kubectl-raw-config"),
    ("kubectl apply -f k8s/", "review", "kubectl-rollout"),
    # --dry-run=client is free; only that exact token
    ("kubectl apply -f k8s/ --dry-run=client", "allow", "kubectl-dry-run"),
    (
        "kubectl create deploy api --image=api:1 --dry-run=client -o yaml",
        "allow",
        "kubectl-dry-run",
    ),
    ("kubectl apply -f k8s/ --dry-run", "review", "kubectl-rollout"),
    ("kubectl apply -f k8s/ --dry-run client", "review", "kubectl-rollout"),
    ("kubectl apply -f k8s/ --dry-run=server", "review", "kubectl-rollout"),
    ("kubectl apply -f k8s/ --dry-run=none", "review", "kubectl-dry-run-overridden"),
    (
        "kubectl apply -f k8s/ --dry-run=client --dry-run=none",
        "review",
        "kubectl-dry-run-overridden",
    ),
    ("kubectl apply -f k8s/ --dry-run=client $MORE", "block", "secrets-unreadable"),
    ("kubectl apply -f k8s/ -n prod --dry-run=client", "review", "kubectl-prod"),
    ("kubectl delete pod api-0 --dry-run=client", "block", "kubectl-destructive"),
    ("kubectl rollout restart deploy/api -n staging", "review", "kubectl-rollout"),
    ("kubectl exec -it api-0 -- sh", "review", "kubectl-interactive"),
    ("kubectl delete pod api-0 -n prod", "block", "kubectl-destructive"),
    ("kubectl drain node-1", "block", "kubectl-destructive"),
    ("cat ~/.kube/config", "block", "secrets-unreadable"),
    # Helm
    ("helm template ./chart", "allow", "helm-reads"),
    ("helm upgrade api ./chart -n staging", "review", "helm-release"),
    ("helm list --kube-context prod-eu", "review", "helm-prod"),
    ("helm list -nprod", "review", "helm-prod"),
    ("helm uninstall api", "block", "helm-uninstall"),
    # Docker
    ("docker build -t api:dev .", "allow", "docker-reads"),
    ("docker ps -a", "allow", "docker-reads"),
    ("docker run --rm alpine echo hi", "review", "docker-other"),
    ("docker run --privileged alpine", "block", "docker-privileged"),
    ("docker run --network=bridge alpine", "review", "docker-other"),
    ("docker run --network=host alpine", "block", "docker-privileged"),
    ("docker run --network host alpine", "block", "docker-host-network"),
    ("docker run -v /:/host alpine", "block", "docker-host-mount"),
    ("docker run --volume=/:/host alpine", "block", "docker-host-mount-option"),
    (
        "docker run -v /var/run/docker.sock:/var/run/docker.sock alpine",
        "block",
        "docker-host-mount",
    ),
    ("docker push registry.example.com/api:1.2", "review", "docker-push"),
    ("docker system prune -af", "block", "docker-destructive"),
    # Ansible
    ("ansible-playbook site.yml --syntax-check", "allow", "ansible-playbook-inspect"),
    ("ansible-playbook site.yml --check", "review", "ansible-playbook-check"),
    ("ansible-playbook -i hosts site.yml", "review", "ansible-apply"),
    ("ansible-vault view group_vars/all/vault.yml", "block", "ansible-vault-reveal"),
    # git: pushes to main are blocked, feature branches are free
    ("git push origin main", "block", "git-push-protected"),
    ("git push origin infra/vpc:main", "block", "git-push-protected"),
    ("git push -u origin infra/vpc", "allow", "git-push-feature"),
    ("git push origin infra/vpc hotfix", "review", "shell:shell.git"),
    ("git push --force origin infra/vpc", "block", "git-force-push"),
    ("git push --all origin", "block", "git-push-everything"),
    ("git push origin --tags", "block", "git-push-everything"),
    ("aws ec2 terminate-instances --instance-ids i-0abc", "block", "aws-destructive"),
    ("aws s3 ls", "review", "default"),
    # redirection targets are paths
    ("echo 127.0.0.1 db >> /etc/hosts", "review", "system-files"),
    ("terraform output > out/values.txt", "allow", "terraform-plan"),
    ("echo 'unterminated", "block", "builtin:shell-unparseable"),
    ("$TOOL destroy", "block", "builtin:shell-unknown-program"),
    # other protocols
    (
        act("file", "file.write", "/workspace/modules/vpc/main.tf", "write"),
        "allow",
        "file-writes-workspace",
    ),
    # file targets are canonical: /workspace/.. is not the workspace
    (
        act("file", "file.write", "/workspace/modules/../../tmp/x.tf", "write"),
        "review",
        "default",
    ),
    (
        act("file", "file.write", "/workspace/../etc/cron.d/job", "write"),
        "review",
        "system-files",
    ),
    (act("mcp", "github.get_file_contents", "acme/infra"), "allow", "github-reads"),
    (act("mcp", "github.merge_pull_request", "acme/infra", "write"), "block", "github-destructive"),
    (act("http", "http.get", "http://169.254.169.254/latest/"), "block", "cloud-metadata"),
    (act("http", "http.get", "http://user@169.254.169.254/latest/"), "block", "cloud-metadata"),
    (act("http", "http.get", "http://metadata/computeMetadata/v1/"), "block", "cloud-metadata"),
    (act("http", "http.get", "https://registry.terraform.io/v1/"), "allow", "http:http.get"),
    (act("sql", "sql.select", "public.orders"), "review", "default"),
]


@pytest.mark.parametrize(("given", "decision", "rule"), INFRA, ids=map(case_id, INFRA))
def test_infra_review(given: str | dict[str, Any], decision: str, rule: str) -> None:
    check("infra-review", given, decision, rule)


@pytest.mark.parametrize(
    "line",
    [
        "terraform apply tf.plan",
        "kubectl apply -f k8s/",
        "kubectl get pods -n prod",
        "kubectl get pods -nprod",
        "kubectl apply -f k8s/ --dry-run=none",
        "TF_WORKSPACE=prod terraform plan",
        "HELM_NAMESPACE=prod helm list",
        "helm upgrade api ./chart",
        "docker push api:1",
        "ansible-playbook site.yml",
    ],
)
def test_infra_applies_need_sre_within_30_minutes(line: str) -> None:
    _, result = decide_line(pack("infra-review"), line)
    assert result.decision == "review"
    assert result.approvers == ("role:sre", "role:admin")
    assert result.approval_expiry == 30 * 60


def test_infra_other_reviews_use_the_policy_approvers() -> None:
    _, result = decide_line(pack("infra-review"), "kubectl exec -it api-0 -- sh")
    assert result.approvers == ("role:reviewer", "role:admin")
    assert result.approval_expiry == 3600


# -------------------------------------------------------------------------- sql-explorer

SQL: list[Case] = [
    (act("sql", "sql.select", "public.orders"), "allow", "sql-reads"),
    (act("sql", "sql.explain", "public.orders"), "allow", "sql-reads"),
    (act("sql", "sql.describe", "public.orders"), "allow", "sql-reads"),
    (act("sql", "sql.show", "public.orders"), "allow", "sql-reads"),
    # protected tables come first, selects included
    (act("sql", "sql.select", "public.users_pii"), "block", "protected-tables"),
    (act("sql", "sql.select", "PUBLIC.USERS_PII"), "block", "protected-tables"),
    (act("sql", "sql.select", "users_pii"), "block", "protected-tables"),
    (act("sql", "sql.select", "vault.secrets_v2"), "block", "protected-tables"),
    (act("sql", "sql.select", "auth.users"), "block", "protected-tables"),
    (act("sql", "sql.select", "analytics.auth.sessions"), "block", "protected-tables"),
    (act("sql", "sql.update", "auth.users", "write"), "block", "protected-tables"),
    (act("sql", "sql.select", "authors.books"), "allow", "sql-reads"),
    (act("sql", "sql.select", "public.user_secrets"), "allow", "sql-reads"),
    # writes reviewed, destruction blocked
    (act("sql", "sql.insert", "public.orders", "write"), "review", "sql-writes"),
    (act("sql", "sql.update", "public.orders", "write"), "review", "sql-writes"),
    (act("sql", "sql.create_table", "scratch.top_customers", "write"), "review", "default"),
    (act("sql", "sql.delete", "public.orders", "delete"), "block", "sql-destructive"),
    (act("sql", "sql.drop_table", "public.orders", "delete"), "block", "sql-destructive"),
    (act("sql", "sql.truncate", "public.orders", "delete"), "block", "sql-destructive"),
    (act("sql", "sql.grant", "public.orders", "write"), "block", "sql-access"),
    (act("sql", "sql.revoke", "public.orders", "write"), "block", "sql-access"),
    (act("sql", "sql.alter_table", "public.orders", "write"), "block", "sql-schema-change"),
    # HTTP and files
    (act("http", "http.get", "https://example.com/rates.csv"), "review", "http-review"),
    (act("http", "http.get", "http://2852039166/latest/"), "block", "cloud-metadata"),
    (
        act("http", "http.delete", "https://api.example.com/x", "delete"),
        "block",
        "http:http.delete",
    ),
    (act("file", "file.read", "/workspace/queries/weekly.sql"), "allow", "file:file.read"),
    (act("file", "file.read", "~/.pgpass"), "block", "database-credentials"),
    (act("file", "file.write", "/workspace/report.md", "write"), "review", "default"),
    # shell: a few reads, the rest reviewed
    ("head -5 exports/orders.csv", "allow", "read-only-programs"),
    ("wc -l exports/*.csv", "allow", "read-only-programs"),
    ("grep -c paid exports/orders.csv 2>/dev/null", "allow", "read-only-programs"),
    ("wc -l exports/*.csv &> counts.txt", "review", "write-redirect"),
    ("psql -c 'DROP TABLE orders'", "review", "database-clients"),
    ("env PGOPTIONS=-c psql analytics", "review", "database-clients"),
    ("sudo -u postgres psql", "block", "privilege-escalation"),
    ("bash -c 'dropdb analytics'", "block", "destructive-programs"),
    ("cat exports/orders.csv > /tmp/copy.csv", "review", "write-redirect"),
    ("cat ~/.pgpass", "block", "database-credentials"),
    ("grep password .env", "block", "secrets-unreadable"),
    ("python analyze.py", "review", "default"),
    ("echo 'unterminated", "review", "builtin:shell-unparseable"),
    ("$CLIENT analytics", "review", "builtin:shell-unknown-program"),
]


@pytest.mark.parametrize(("given", "decision", "rule"), SQL, ids=map(case_id, SQL))
def test_sql_explorer(given: str | dict[str, Any], decision: str, rule: str) -> None:
    check("sql-explorer", given, decision, rule)


# -------------------------------------------------------------------------- docs-writer

DOCS: list[Case] = [
    # file writes: documentation targets only
    (act("file", "file.write", "/workspace/docs/index.md", "write"), "allow", "docs-files"),
    (act("file", "file.write", "/workspace/docs/img/arch.svg", "write"), "allow", "docs-files"),
    (act("file", "file.write", "/workspace/README.md", "write"), "allow", "docs-files"),
    (act("file", "file.edit", "/workspace/src/pkg/guide.rst", "write"), "allow", "docs-files"),
    (act("file", "file.write", "/workspace/mkdocs.yml", "write"), "allow", "docs-files"),
    (act("file", "file.write", "/workspace/setup.cfg", "write"), "review", "file-writes-elsewhere"),
    (act("file", "file.write", "/workspace/docs/conf.py", "write"), "review", "docs-build-code"),
    (act("file", "file.write", "/workspace/docs/.env", "write"), "block", "secrets-unreadable"),
    (act("file", "file.read", "/etc/hosts"), "allow", "file:file.read"),
    (act("file", "file.read", "/workspace/.env.production"), "block", "secrets-unreadable"),
    (act("file", "file.delete", "/workspace/docs/old.md", "delete"), "review", "delete-docs"),
    (act("file", "file.delete", "/workspace/src/app.py", "delete"), "block", "file:file.delete"),
    # file targets are judged in canonical form
    (
        act("file", "file.write", "/workspace/docs/../.github/workflows/ci.yml", "write"),
        "review",
        "file-writes-elsewhere",
    ),
    (
        act("file", "file.write", "/workspace/docs/./guide/../index.md", "write"),
        "allow",
        "docs-files",
    ),
    (
        act("file", "file.delete", "/workspace/docs/../src/app.py", "delete"),
        "block",
        "file:file.delete",
    ),
    (act("file", "file.write", "docs/index.md", "write"), "review", "file-writes-elsewhere"),
    # GitHub
    (act("git", "github.get_pull_request", "acme/site"), "allow", "github-reads"),
    (
        act("git", "github.create_pull_request", "acme/site", "write"),
        "review",
        "github-pull-request",
    ),
    (act("mcp", "github.merge_pull_request", "acme/site", "write"), "block", "github-destructive"),
    (
        act("mcp", "github.create_or_update_file", "acme/site", "write", branch="main"),
        "block",
        "github-write-protected-branch",
    ),
    # docs tooling and git
    ("mkdocs build --strict", "allow", "docs-tools"),
    ("env NO_COLOR=1 mkdocs build", "allow", "docs-tools"),
    ("mkdocs gh-deploy --force", "review", "mkdocs-deploy"),
    ("sphinx-build -b html docs docs/_build", "allow", "docs-tools"),
    ("vale docs/ && markdownlint '**/*.md'", "allow", "docs-tools"),
    ("git add docs/ && git commit -m 'docs: install guide'", "allow", "git-docs-work"),
    ("git push -u origin docs/install-guide", "allow", "git-push-docs"),
    ("git push origin main", "block", "git-push-protected"),
    ("git push origin docs/x:main", "block", "git-push-protected"),
    ("git push origin docs/x:release-notes", "review", "git-push-refspec"),
    ("git push origin docs/x feat/y", "review", "shell:shell.git"),
    ("git push upstream docs/x", "review", "shell:shell.git"),
    ("git push --force origin docs/x", "block", "git-force-push"),
    ("git rebase main", "review", "shell:shell.git"),
    # shell file commands: allowed only when every path is documentation
    ("cp docs/a.md docs/b.md", "allow", "docs-file-commands"),
    ("mv README.md docs/index.md", "allow", "docs-file-commands"),
    ("cp docs/a.md setup.cfg", "review", "default"),
    ("cp docs/a.md docs/conf.py", "review", "docs-build-code-shell"),
    ("cp docs/*.md /tmp/", "review", "default"),
    # redirections: into documentation when every path is documentation
    ("cat docs/a.md docs/b.md > docs/all.md", "allow", "docs-redirect"),
    ("cat docs/a.md >> README.md 2>/dev/null", "allow", "docs-redirect"),
    ("cat docs/a.md > docs/conf.py", "review", "docs-build-code-redirect"),
    ("cat > docs/install.md <<'EOF'\n# Install\n\npip install acme\nEOF", "allow", "docs-redirect"),
    ("cat > setup.py <<'EOF'\nimport os\nEOF", "review", "docs-build-code-redirect"),
    ("sort docs/words.txt > docs/../words.txt", "review", "write-redirect"),
    ("mkdocs build 2>/dev/null", "allow", "docs-tools"),
    ("mkdocs build > build.log", "review", "write-redirect"),
    ("echo '# Notes' > src/notes.txt", "review", "write-redirect"),
    ("cat docs/index.md > .env", "block", "secrets-unreadable"),
    ("rm docs/old.md", "block", "destructive-programs"),
    ("sudo mkdocs build", "block", "privilege-escalation"),
    ("bash -c 'mkdocs build && rm -rf site'", "block", "destructive-programs"),
    ("pip install mkdocs-material", "review", "default"),
    ("echo 'unterminated", "review", "builtin:shell-unparseable"),
]


@pytest.mark.parametrize(("given", "decision", "rule"), DOCS, ids=map(case_id, DOCS))
def test_docs_writer(given: str | dict[str, Any], decision: str, rule: str) -> None:
    check("docs-writer", given, decision, rule)


def test_docs_pull_request_credential() -> None:
    for protocol in ("git", "mcp"):
        result = decide_action(
            pack("docs-writer"),
            act(protocol, "github.create_pull_request", "acme/site", "write"),
        )
        assert result.decision == "review"
        assert result.credential is not None
        assert result.credential.type == "github_app_jwt"
        assert result.credential.scope == "pull_requests:write,contents:read"
        assert result.credential.ttl == 600


# -------------------------------------------------------------------------- every pack

PACK_FILES = sorted(PACKS.glob("*.yaml"))
NEW_PACKS = ("readonly", "infra-review", "sql-explorer", "docs-writer")


def test_each_table_mixes_at_least_15_actions_and_lines() -> None:
    for table in (READONLY, INFRA, SQL, DOCS):
        assert len(table) >= 15
        assert any(isinstance(case[0], str) for case in table)
        assert any(isinstance(case[0], dict) for case in table)


def test_the_four_packs_exist() -> None:
    assert {p.stem for p in PACK_FILES} >= {*NEW_PACKS, "pr-writer"}


@pytest.mark.parametrize("path", PACK_FILES, ids=[p.stem for p in PACK_FILES])
def test_pack_loads_with_its_name_and_an_explicit_default(path: Path) -> None:
    text = path.read_text()
    document = yaml.safe_load(text)
    assert document["name"] == path.stem
    assert text.startswith("# AegisFlow policy pack:")
    declared = document["tool_policies"].get("default_decision")
    assert declared in ("allow", "review", "block"), "default_decision must be written out"
    policy = pack(path.stem)
    assert policy.name == path.stem
    assert policy.default_decision == declared
    assert policy.rules


@pytest.mark.parametrize("name", NEW_PACKS)
def test_every_block_says_why(name: str) -> None:
    for rule in pack(name).rules:
        if rule.decision == "block":
            assert rule.reason != "blocked by policy", rule.name


def _parameter_keys(rule: dict[str, Any]) -> set[str]:
    when = rule.get("when") or {}
    return set((when.get("parameters") or {}).keys())


@pytest.mark.parametrize("name", NEW_PACKS)
def test_redirections_are_matched_on_redirects_not_on_the_line_text(name: str) -> None:
    rules = yaml.safe_load((PACKS / f"{name}.yaml").read_text())["tool_policies"]["rules"]
    for rule in rules:
        assert "command_line" not in _parameter_keys(rule), rule.get("id")


# -------------------------------------------------------------- engine regressions
# Found while writing the packs; each was an engine bug, fixed, and stays a test.


def test_engine_compound_command_redirect_is_seen() -> None:
    check("readonly", "{ cat README.md; } > notes.txt", "review", "write-redirect")


def test_engine_compound_command_input_redirect_is_seen() -> None:
    check("readonly", "{ cat; } < ~/.aws/credentials", "block", "secrets-unreadable")


def test_engine_wrapper_redirect_is_kept_beside_inner_ones() -> None:
    check("readonly", "bash -c 'cat README.md 2>/dev/null' > .env", "block", "secrets-unreadable")


def test_engine_clustered_namespace_value_is_seen() -> None:
    check("infra-review", "kubectl get pods -wnprod", "review", "kubectl-prod")
