import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { runRiversideWorkers } from 'nestjs-riverside';
import { AppModule } from './app.module.js';

const port = Number(process.env.PORT ?? 3000);

async function main(): Promise<void> {
  const app = await NestFactory.create(AppModule);
  app.enableShutdownHooks();
  await app.listen(port);
  console.log(`Chat on http://localhost:${port}/ (WebSocket: ws://localhost:${port}/chat?name=you) in process ${process.pid}`);
}

// WORKERS=4 npm start: four processes on one port, one chat (see chatTransport in transport.ts).
const workers = process.env.WORKERS === undefined ? 1 : Number(process.env.WORKERS);
if (workers !== 1) await runRiversideWorkers({ workers, main });
else await main();
