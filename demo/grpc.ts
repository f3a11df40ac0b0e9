/**
 * A tiny gRPC service to try the sidecar's gRPC relay with, and a client for
 * it (docs/http2.md). Messages are JSON rather than protobuf, which gRPC
 * frames like any bytes, so there is no .proto to compile. Uses
 * @grpc/grpc-js (a devDependency: `npm ci` installs it).
 *
 *   node demo/grpc.ts serve [port]                   # demo.Greeter on 127.0.0.1:50051
 *   node demo/grpc.ts call HOST:PORT NAME [deadlineMs] # Hello, then Countdown (server streaming)
 *
 * Hello answers `{ "greeting": "hello NAME" }`; NAME "slow" takes 2 s (try a
 * deadline), "fail" answers NOT_FOUND with a message. Countdown streams 3, 2, 1.
 */
import * as grpc from '@grpc/grpc-js';

interface Message {
  [key: string]: unknown;
}

const json = {
  serialize: (value: Message): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): Message => JSON.parse(bytes.toString()) as Message,
};

function method(name: string, responseStream: boolean): grpc.MethodDefinition<Message, Message> {
  return {
    path: `/demo.Greeter/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

const GREETER = { hello: method('Hello', false), countdown: method('Countdown', true) };
const Greeter = grpc.makeGenericClientConstructor(GREETER as unknown as grpc.ServiceDefinition, 'Greeter');

function serve(port: number): void {
  const server = new grpc.Server();
  server.addService(GREETER as unknown as grpc.ServiceDefinition, {
    hello: (call: grpc.ServerUnaryCall<Message, Message>, callback: grpc.sendUnaryData<Message>) => {
      const name = String(call.request.name ?? 'world');
      if (name === 'fail') return callback({ code: grpc.status.NOT_FOUND, details: `no one called "${name}" here` });
      const answer = () => callback(null, { greeting: `hello ${name}` });
      if (name === 'slow') {
        const timer = setTimeout(answer, 2_000);
        call.on('cancelled', () => clearTimeout(timer));
      } else answer();
    },
    countdown: (call: grpc.ServerWritableStream<Message, Message>) => {
      let n = 3;
      const timer = setInterval(() => {
        call.write({ n });
        if (--n === 0) {
          clearInterval(timer);
          call.end();
        }
      }, 300);
      call.on('cancelled', () => clearInterval(timer));
    },
  } as unknown as grpc.UntypedServiceImplementation);
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
    if (err) throw err;
    console.log(`demo.Greeter (gRPC, h2c) on 127.0.0.1:${bound}`);
  });
}

function call(target: string, name: string, deadlineMs: number): void {
  const client = new Greeter(target, grpc.credentials.createInsecure()) as unknown as {
    hello(request: Message, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, reply: Message) => void): grpc.ClientUnaryCall;
    countdown(request: Message): grpc.ClientReadableStream<Message>;
    close(): void;
  };
  const hello = client.hello({ name }, { deadline: Date.now() + deadlineMs }, (err, reply) => {
    if (err) console.log(`Hello: ${grpc.status[err.code]} (${err.code}): ${err.details}`);
    else console.log('Hello:', reply);
    const stream = client.countdown({});
    stream.on('data', (message: Message) => console.log('Countdown:', message));
    stream.on('error', (error: grpc.ServiceError) => console.log(`Countdown: ${grpc.status[error.code]}: ${error.details}`));
    stream.on('end', () => client.close());
  });
  hello.on('status', (status: grpc.StatusObject) => {
    const error = status.metadata.get('x-sidecar-error')[0];
    if (error) console.log(`  answered by the sidecar: x-sidecar-error ${String(error)}`);
  });
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'serve') serve(Number(rest[0] ?? 50051));
else if (mode === 'call' && rest[0]) call(rest[0], rest[1] ?? 'world', Number(rest[2] ?? 5_000));
else {
  console.error('usage: node demo/grpc.ts serve [port] | call HOST:PORT [NAME] [deadlineMs]');
  process.exitCode = 2;
}
