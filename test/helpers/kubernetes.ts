/**
 * The Kubernetes example (docker/kubernetes/) read as objects, and what the
 * image's Dockerfile says about how the sidecar runs. Used by the manifest
 * tests and by bench/k8s-rss.ts, which measures the memory the manifests ask for.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from './process.ts';

export const EXAMPLE_DIR = join(ROOT, 'docker/kubernetes');
export const DOCKERFILE = join(ROOT, 'docker/Dockerfile');

/** A Kubernetes object as plain data; the fields the checks read are typed loosely on purpose. */
export type K8sObject = { apiVersion?: string; kind?: string; metadata?: { name?: string; labels?: Record<string, string> }; [key: string]: unknown };

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  ports?: Array<{ name?: string; containerPort: number; protocol?: string }>;
  restartPolicy?: string;
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number }; exec?: unknown; httpGet?: unknown } };
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: SecurityContext;
  volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string; readOnly?: boolean }>;
}

export interface Probe {
  httpGet?: { path?: string; port: number | string; host?: string };
  tcpSocket?: { port: number | string; host?: string };
  grpc?: { port: number };
  exec?: { command: string[] };
}

export interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: unknown;
  runAsGroup?: unknown;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}

export interface PodSpec {
  terminationGracePeriodSeconds?: number;
  securityContext?: SecurityContext;
  initContainers?: Container[];
  containers: Container[];
  volumes?: Array<{ name: string; configMap?: { name: string }; emptyDir?: unknown }>;
}

/** Every document of the YAML files, in order. */
export function readObjects(files: readonly string[]): K8sObject[] {
  return files.flatMap((file) =>
    parseAllDocuments(readFileSync(file, 'utf8'))
      .map((doc) => doc.toJS() as K8sObject | null)
      .filter((object): object is K8sObject => object !== null),
  );
}

/** The example as `kubectl apply -k docker/kubernetes/` sees it: the kustomization and the objects it lists. */
export function readExample(dir = EXAMPLE_DIR): { kustomization: K8sObject & { resources?: string[]; images?: Array<{ name: string; newName?: string; newTag?: string; digest?: string }> }; objects: K8sObject[] } {
  const [kustomization] = readObjects([join(dir, 'kustomization.yaml')]);
  const resources = (kustomization.resources as string[] | undefined) ?? [];
  return { kustomization, objects: readObjects(resources.map((file) => join(dir, file))) };
}

/** The pod template of the (one) Deployment. */
export function podSpec(objects: readonly K8sObject[]): PodSpec {
  const deployment = objects.find((object) => object.kind === 'Deployment') as { spec: { template: { spec: PodSpec } } } | undefined;
  if (!deployment) throw new Error('no Deployment in the example');
  return deployment.spec.template.spec;
}

/** The container that runs the sidecar: the one whose arguments name a --config file. */
export function sidecarContainer(pod: PodSpec): Container {
  const found = [...(pod.initContainers ?? []), ...pod.containers].find((container) => container.args?.includes('--config'));
  if (!found) throw new Error('no container runs the sidecar with --config');
  return found;
}

/** The text of the config the sidecar container reads: the ConfigMap key behind its --config path. */
export function sidecarConfigText(objects: readonly K8sObject[]): string {
  const pod = podSpec(objects);
  const sidecar = sidecarContainer(pod);
  const path = sidecar.args![sidecar.args!.indexOf('--config') + 1];
  for (const mount of sidecar.volumeMounts ?? []) {
    if (!path.startsWith(`${mount.mountPath}/`)) continue;
    const volume = pod.volumes?.find((v) => v.name === mount.name);
    const map = objects.find((object) => object.kind === 'ConfigMap' && object.metadata?.name === volume?.configMap?.name) as { data?: Record<string, string> } | undefined;
    const text = map?.data?.[path.slice(mount.mountPath.length + 1)];
    if (text !== undefined) return text;
  }
  throw new Error(`no ConfigMap key is mounted at ${path}`);
}

/** The value of an environment variable the container sets (undefined when not set). */
export function envOf(container: Container, name: string): string | undefined {
  return container.env?.find((entry) => entry.name === name)?.value;
}

/** What the image does: ENTRYPOINT (exec form) and the ENV lines, from docker/Dockerfile. */
export function dockerfileFacts(file = DOCKERFILE): { entrypoint: string[]; env: Record<string, string>; user: string | undefined } {
  const text = readFileSync(file, 'utf8');
  const entry = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(text);
  if (!entry) throw new Error('docker/Dockerfile has no exec-form ENTRYPOINT');
  const env: Record<string, string> = {};
  for (const [, key, value] of text.matchAll(/^ENV\s+([A-Z_][A-Z0-9_]*)=(\S+)\s*$/gm)) env[key] = value;
  const users = [...text.matchAll(/^USER\s+(\S+)\s*$/gm)];
  return { entrypoint: JSON.parse(entry[1]) as string[], env, user: users.at(-1)?.[1] };
}

/** A Kubernetes quantity of memory ("128Mi", "1G", "134217728") in bytes. */
export function memoryBytes(quantity: string | number | undefined): number | undefined {
  if (quantity === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(quantity));
  if (!match) throw new Error(`not a memory quantity: ${quantity}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

/** Where a copy of the example's config listens and forwards on this machine: free loopback ports instead of the pod's. */
export interface LoopbackPorts {
  ingress: number;
  egress: number;
  admin: number;
  /** The app's port (the upstream at 127.0.0.1:3000 in the pod). */
  app: number;
}

/** The example's sidecar config with its pod addresses moved to `ports` on 127.0.0.1 (0 = any free port). */
export function configOnLoopback(text: string, ports: LoopbackPorts): string {
  return text
    .replace('0.0.0.0:8080', `127.0.0.1:${ports.ingress}`)
    .replace('127.0.0.1:15001', `127.0.0.1:${ports.egress}`)
    .replace('127.0.0.1:9901', `127.0.0.1:${ports.admin}`)
    .replaceAll('http://127.0.0.1:3000', `http://127.0.0.1:${ports.app}`);
}
