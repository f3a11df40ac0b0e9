/**
 * What a cluster would check, checked offline: each object against the
 * Kubernetes OpenAPI schemas (kubernetes-models), then the rules the schemas
 * cannot see (the kubelet's, the API server's cross-field checks, and this
 * project's own: admin on loopback, the compile cache, the termination order,
 * resources from measurements). Each rule answers with readable problems.
 */
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import { parse } from 'yaml';
import { configSchema } from '../../src/config/schema.ts';
import { parseListen } from '../../src/config/units.ts';
import { dockerfileFacts, envOf, memoryBytes, podSpec, sidecarConfigText, sidecarContainer, type Container, type K8sObject, type PodSpec, type Probe, type SecurityContext } from './kubernetes.ts';

/**
 * What bench/k8s-rss.ts measured (2026-12-04, `--seconds 20`): RSS at ready
 * with a warm compile cache, the peak RSS and the peak V8 heap used under load
 * (500 connections, 1 MiB responses, egress). Bytes.
 */
export const MEASURED = { readyRss: 99.7e6, peakRss: 156.9e6, peakHeapUsed: 42.9e6 };

/** Seconds the app may take to finish its requests after SIGTERM (the example's own budget, in its header). */
export const APP_STOP_SECONDS = 15;

const MODELS: Record<string, { validate(): void } & (new (data: never) => { validate(): void })> = {
  'v1/ConfigMap': ConfigMap as never,
  'v1/Service': Service as never,
  'apps/v1/Deployment': Deployment as never,
};

/** Each object against the OpenAPI schema of its kind; an unknown kind is a problem too. */
export function schemaProblems(objects: readonly K8sObject[]): string[] {
  const problems: string[] = [];
  for (const object of objects) {
    const name = `${object.kind}/${object.metadata?.name}`;
    const Model = MODELS[`${object.apiVersion}/${object.kind}`];
    if (!Model) {
      problems.push(`${name}: no schema known for ${object.apiVersion} ${object.kind}`);
      continue;
    }
    try {
      new Model(object as never).validate();
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`);
    }
  }
  return problems;
}

/** Every rule below, over the example's objects; `images` is the kustomization's images list, if any. */
export function ruleProblems(objects: readonly K8sObject[], images: ReadonlyArray<{ name: string }> = []): string[] {
  const pod = podSpec(objects);
  const sidecar = sidecarContainer(pod);
  const config = parse(sidecarConfigText(objects)) as SidecarConfig;
  return [
    ...securityProblems(pod),
    ...cacheProblems(pod, sidecar),
    ...probeProblems(pod, sidecar, config),
    ...serviceProblems(objects, pod, sidecar, config),
    ...configProblems(pod, sidecar, config),
    ...resourceProblems(sidecar),
    ...terminationProblems(pod, sidecar, config),
    ...imageProblems(pod, images),
  ];
}

interface SidecarConfig {
  admin?: { listen?: string };
  ingress?: { listen?: string };
}

const containersOf = (pod: PodSpec): Container[] => [...(pod.initContainers ?? []), ...pod.containers];

/** The kubelet's and the restricted Pod Security Standard's rules, container by container (a container's own setting wins). */
function securityProblems(pod: PodSpec): string[] {
  const problems: string[] = [];
  for (const container of containersOf(pod)) {
    const effective = <K extends keyof SecurityContext>(key: K) => container.securityContext?.[key] ?? pod.securityContext?.[key];
    const say = (text: string) => problems.push(`container ${container.name}: ${text}`);
    if (effective('runAsNonRoot') !== true) say('runAsNonRoot is not true');
    // The kubelet cannot verify runAsNonRoot for a named image user (`USER node`): it refuses to start the container.
    const uid = effective('runAsUser');
    if (!Number.isInteger(uid) || (uid as number) <= 0) say(`runAsUser is not a numeric non-root uid (${JSON.stringify(uid)})`);
    if (!Number.isInteger(effective('runAsGroup'))) say('runAsGroup is not numeric');
    if (container.securityContext?.allowPrivilegeEscalation !== false) say('allowPrivilegeEscalation is not false');
    if (!container.securityContext?.capabilities?.drop?.includes('ALL')) say('capabilities do not drop ALL');
    if (container.securityContext?.capabilities?.add?.length) say('capabilities are added');
    if (container.securityContext?.readOnlyRootFilesystem !== true) say('readOnlyRootFilesystem is not true');
    if (effective('seccompProfile')?.type !== 'RuntimeDefault') say('seccompProfile is not RuntimeDefault');
  }
  return problems;
}

/** The compile cache warmed into the image must be the runtime user's, and stay visible. */
function cacheProblems(pod: PodSpec, sidecar: Container): string[] {
  const problems: string[] = [];
  const image = dockerfileFacts();
  const cache = image.env.NODE_COMPILE_CACHE;
  const uid = sidecar.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
  const imageUid = image.user?.split(':')[0];
  if (imageUid === undefined || !/^\d+$/.test(imageUid)) problems.push(`the image's USER is not numeric (${image.user})`);
  else if (Number(imageUid) !== uid) problems.push(`the sidecar runs as uid ${uid}, but the image's compile cache was warmed as uid ${imageUid} (Node keeps it per uid)`);
  for (const mount of sidecar.volumeMounts ?? []) {
    if (cache && (cache === mount.mountPath || cache.startsWith(`${mount.mountPath.replace(/\/$/, '')}/`))) {
      problems.push(`volume ${mount.name} at ${mount.mountPath} hides the compile cache warmed into the image (${cache})`);
    }
  }
  const tmp = sidecar.volumeMounts?.find((mount) => mount.mountPath === '/tmp');
  if (!tmp || !pod.volumes?.find((volume) => volume.name === tmp.name)?.emptyDir) problems.push('the sidecar has no emptyDir at /tmp (its root filesystem is read-only)');
  return problems;
}

/** A port the kubelet (at the pod IP) reaches: declared by a container, and not a sidecar listener bound to loopback only. */
function reachablePort(pod: PodSpec, owner: Container, port: number | string, config: SidecarConfig): string | undefined {
  const number = typeof port === 'number' ? port : owner.ports?.find((p) => p.name === port)?.containerPort;
  if (number === undefined) return `port "${port}" is not a port of container ${owner.name}`;
  if (!containersOf(pod).some((container) => container.ports?.some((p) => p.containerPort === number))) {
    return `port ${number} is not declared by any container of the pod`;
  }
  for (const key of ['admin', 'ingress'] as const) {
    const listen = parseListen(config[key]?.listen ?? '');
    if (listen?.port === number && isLoopback(listen.host)) return `port ${number} is the sidecar's ${key} port, bound to loopback (${listen.host}): the kubelet cannot reach it`;
  }
  return undefined;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function probeProblems(pod: PodSpec, sidecar: Container, config: SidecarConfig): string[] {
  const problems: string[] = [];
  for (const container of containersOf(pod)) {
    for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
      const probe: Probe | undefined = container[kind];
      const target = probe?.httpGet ?? probe?.tcpSocket;
      if (!target) continue;
      if (target.host) problems.push(`container ${container.name}: ${kind} sets host (probes go to the pod IP)`);
      const why = reachablePort(pod, container, target.port, config);
      if (why) problems.push(`container ${container.name}: ${kind}: ${why}`);
    }
  }
  if (!pod.containers.every((container) => container.readinessProbe)) problems.push('an app container has no readiness probe');
  if (!sidecar.startupProbe) problems.push('the sidecar has no startup probe (the app would start before its HTTP_PROXY is bound)');
  return problems;
}

function serviceProblems(objects: readonly K8sObject[], pod: PodSpec, sidecar: Container, config: SidecarConfig): string[] {
  const problems: string[] = [];
  const deployment = objects.find((object) => object.kind === 'Deployment') as { spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } } };
  const labels = deployment.spec.template.metadata.labels;
  const selects = (selector: Record<string, string> | undefined) => !!selector && Object.entries(selector).every(([key, value]) => labels[key] === value);
  if (!selects(deployment.spec.selector.matchLabels)) problems.push('the Deployment selector does not match its pod template labels');
  for (const service of objects.filter((object) => object.kind === 'Service') as Array<{ metadata: { name: string }; spec: { selector?: Record<string, string>; ports: Array<{ targetPort?: number | string; port: number }> } }>) {
    if (!selects(service.spec.selector)) problems.push(`Service ${service.metadata.name}: its selector matches no pod of the Deployment`);
    for (const port of service.spec.ports) {
      const target = port.targetPort ?? port.port;
      if (typeof target === 'string') {
        // Services resolve a port name declared only by an init (native sidecar) container from 1.32 on (kubernetes#127958).
        if (!pod.containers.some((container) => container.ports?.some((p) => p.name === target))) {
          problems.push(`Service ${service.metadata.name}: targetPort "${target}" is not a port name of a regular container (a native sidecar's port name needs Kubernetes 1.32+)`);
        }
        continue;
      }
      const why = reachablePort(pod, sidecar, target, config);
      if (why) problems.push(`Service ${service.metadata.name}: targetPort ${why}`);
    }
  }
  return problems;
}

/** The config itself: admin on loopback, ingress where the pod declares it, mounted so that edits reach it. */
function configProblems(pod: PodSpec, sidecar: Container, config: SidecarConfig): string[] {
  const problems: string[] = [];
  const admin = parseListen(config.admin?.listen ?? '127.0.0.1:9901');
  if (!admin || !isLoopback(admin.host)) problems.push(`the admin port listens beyond loopback (${config.admin?.listen})`);
  const ingress = parseListen(config.ingress?.listen ?? '0.0.0.0:8080');
  if (ingress && !sidecar.ports?.some((port) => port.containerPort === ingress.port)) problems.push(`the sidecar does not declare its ingress port ${ingress.port}`);
  const path = sidecar.args?.[sidecar.args.indexOf('--config') + 1] ?? '';
  const mount = sidecar.volumeMounts?.find((m) => path.startsWith(`${m.mountPath}/`));
  if (mount?.subPath) problems.push('the config is mounted with subPath: Kubernetes never updates it, so a ConfigMap edit never reloads');
  if (mount && !pod.volumes?.find((volume) => volume.name === mount.name)?.configMap) problems.push('the config is not mounted from a ConfigMap');
  return problems;
}

function resourceProblems(sidecar: Container): string[] {
  const problems: string[] = [];
  const request = memoryBytes(sidecar.resources?.requests?.memory);
  const limit = memoryBytes(sidecar.resources?.limits?.memory);
  if (request === undefined || request < MEASURED.readyRss) problems.push(`the sidecar's memory request (${sidecar.resources?.requests?.memory}) is below its measured RSS at ready (${mb(MEASURED.readyRss)})`);
  if (limit === undefined || limit < MEASURED.peakRss) problems.push(`the sidecar's memory limit (${sidecar.resources?.limits?.memory}) is below its measured peak RSS (${mb(MEASURED.peakRss)})`);
  if (sidecar.resources?.requests?.cpu === undefined) problems.push('the sidecar has no CPU request');
  const flags = [...dockerfileFacts().entrypoint, ...(envOf(sidecar, 'NODE_OPTIONS') ?? '').split(/\s+/)];
  const old = flagMiB(flags, '--max-old-space-size');
  const semi = flagMiB(flags, '--max-semi-space-size') ?? 32;
  if (old === undefined) problems.push('NODE_OPTIONS sets no --max-old-space-size: V8 sizes its heap from the node, not from the limit');
  else {
    if (old * 2 ** 20 < 1.5 * MEASURED.peakHeapUsed) problems.push(`--max-old-space-size=${old} leaves too little room over the measured heap (${mb(MEASURED.peakHeapUsed)})`);
    // What is not heap (code, sockets, buffers) was peakRss - peakHeapUsed under load.
    const worst = (old + 3 * semi) * 2 ** 20 + (MEASURED.peakRss - MEASURED.peakHeapUsed);
    if (limit !== undefined && worst > limit) problems.push(`a full heap (${old} + 3 x ${semi} MiB) plus the measured memory outside it (${mb(worst)}) exceeds the limit`);
  }
  return problems;
}

function flagMiB(flags: readonly string[], name: string): number | undefined {
  const flag = flags.findLast((f) => f.startsWith(`${name}=`));
  return flag === undefined ? undefined : Number(flag.slice(name.length + 1));
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

/** The native sidecar stops after the app; the app waits for endpoint removal; the grace period covers every step. */
function terminationProblems(pod: PodSpec, sidecar: Container, config: SidecarConfig): string[] {
  const problems: string[] = [];
  if (!pod.initContainers?.includes(sidecar) || sidecar.restartPolicy !== 'Always') {
    problems.push('the sidecar is not a native sidecar (an init container with restartPolicy: Always), so it may stop before the app');
  }
  let preStop = Infinity;
  for (const container of pod.containers) {
    const seconds = container.lifecycle?.preStop?.sleep?.seconds;
    if (seconds === undefined) problems.push(`container ${container.name} has no preStop sleep: it stops while the endpoint removal is still on its way`);
    else preStop = Math.min(preStop, seconds);
  }
  // The sidecar's own drain deadline, its default included (the schema's).
  const drain = configSchema.parse(config).drainTimeout / 1000;
  const needed = (Number.isFinite(preStop) ? preStop : 0) + APP_STOP_SECONDS + drain;
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  if (grace < needed) problems.push(`terminationGracePeriodSeconds (${grace}) is below preStop + the app's stop + the sidecar's drain (${needed} s)`);
  return problems;
}

/** An image is named once: the Deployment uses bare names, the kustomization's `images` sets name, tag or digest. */
function imageProblems(pod: PodSpec, images: ReadonlyArray<{ name: string }>): string[] {
  const problems: string[] = [];
  for (const container of containersOf(pod)) {
    const image = container.image ?? '';
    if (/[:@]/.test(image.replace(/^[^/]*:\d+\//, ''))) problems.push(`container ${container.name}: image "${image}" carries a tag or digest in the Deployment`);
    if (!images.some((entry) => entry.name === image)) problems.push(`container ${container.name}: image "${image}" is not set in the kustomization's images`);
  }
  return problems;
}
