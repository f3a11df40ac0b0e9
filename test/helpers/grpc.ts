/**
 * A tiny gRPC service for tests, served and called with @grpc/grpc-js (no
 * .proto: messages are JSON, which gRPC frames like any bytes). Four methods,
 * one per kind of call: Unary, ServerStream, ClientStream, Bidi.
 */
import * as grpc from '@grpc/grpc-js';

export interface Msg {
  text: string;
  n?: number;
}

const serialize = (value: Msg): Buffer => Buffer.from(JSON.stringify(value));
const deserialize = (bytes: Buffer): Msg => JSON.parse(bytes.toString()) as Msg;

function method(name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Msg, Msg> {
  return {
    path: `/demo.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  };
}

export const ECHO_SERVICE = {
  unary: method('Unary', false, false),
  serverStream: method('ServerStream', false, true),
  clientStream: method('ClientStream', true, false),
  bidi: method('Bidi', true, true),
} as const;

/** The client class of ECHO_SERVICE. */
export const EchoClient = grpc.makeGenericClientConstructor(ECHO_SERVICE as unknown as grpc.ServiceDefinition, 'Echo');
export type EchoClientInstance = InstanceType<typeof EchoClient>;

export interface Handlers {
  unary?: grpc.handleUnaryCall<Msg, Msg>;
  serverStream?: grpc.handleServerStreamingCall<Msg, Msg>;
  clientStream?: grpc.handleClientStreamingCall<Msg, Msg>;
  bidi?: grpc.handleBidiStreamingCall<Msg, Msg>;
}

/** The default behaviour: echo, five numbered answers, the count of messages, echo each. */
export const ECHO_HANDLERS: Required<Handlers> = {
  unary: (call, callback) => callback(null, { text: `echo: ${call.request.text}` }),
  serverStream: (call) => {
    for (let n = 1; n <= 5; n++) call.write({ text: call.request.text, n });
    call.end();
  },
  clientStream: (call, callback) => {
    const texts: string[] = [];
    call.on('data', (message: Msg) => texts.push(message.text));
    call.on('end', () => callback(null, { text: texts.join(','), n: texts.length }));
  },
  bidi: (call) => {
    call.on('data', (message: Msg) => call.write({ text: `echo: ${message.text}` }));
    call.on('end', () => call.end());
  },
};

export interface TestGrpcServer {
  readonly server: grpc.Server;
  readonly port: number;
  close(): Promise<void>;
}

/** A grpc-js server on 127.0.0.1:0 (h2c). */
export async function startGrpcServer(handlers: Handlers = {}): Promise<TestGrpcServer> {
  const server = new grpc.Server();
  server.addService(ECHO_SERVICE as unknown as grpc.ServiceDefinition, { ...ECHO_HANDLERS, ...handlers } as unknown as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

/** A client of the test service at `target` (host:port), cleartext unless `credentials` say otherwise. */
export function echoClient(target: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), options: grpc.ClientOptions = {}): EchoClientInstance {
  return new EchoClient(target, credentials, options);
}

export interface UnaryResult {
  error: grpc.ServiceError | null;
  response: Msg | undefined;
  metadata: grpc.Metadata | undefined;
  status: grpc.StatusObject | undefined;
}

/** One unary call, with its response head (metadata) and status (trailers); `deadlineMs` from now. */
export function unary(client: EchoClientInstance, request: Msg, metadata = new grpc.Metadata(), deadlineMs = 10_000): Promise<UnaryResult> {
  return new Promise((resolve) => {
    const result: UnaryResult = { error: null, response: undefined, metadata: undefined, status: undefined };
    let done = 0;
    const finish = () => {
      if (++done === 2) resolve(result);
    };
    const call = (client as unknown as { unary: Function }).unary(request, metadata, { deadline: Date.now() + deadlineMs }, (error: grpc.ServiceError | null, response: Msg) => {
      result.error = error;
      result.response = response;
      finish();
    }) as grpc.ClientUnaryCall;
    call.on('metadata', (head: grpc.Metadata) => (result.metadata = head));
    call.on('status', (status: grpc.StatusObject) => {
      result.status = status;
      finish();
    });
  });
}

export { grpc };
