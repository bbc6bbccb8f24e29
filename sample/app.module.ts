import { Module } from '@nestjs/common';
import { RedisTransport, RiversideModule } from 'nestjs-riverside';
import { ChatController } from './chat.controller.js';
import { ChatHandler } from './chat.handler.js';

@Module({
  imports: [
    RiversideModule.forRoot({
      // The page, the HTTP API and the WebSocket share the app's port.
      port: 'http',
      invalidMessage: 'close',
      transmissionLimit: { capacity: 20, duration: 1000 },
      // A person follows a handful of channels; past this, join() throws and the handler says so.
      maxChannelsPerSession: 10,
      // CHAT_REDIS_URL=redis://127.0.0.1:6379 on every node makes them one chat (one list of
      // members, direct messages to whichever node the user is on); without it, one node.
      ...(process.env.CHAT_REDIS_URL && {
        transport: new RedisTransport({ url: process.env.CHAT_REDIS_URL, prefix: process.env.CHAT_PREFIX ?? 'chat' }),
      }),
    }),
  ],
  controllers: [ChatController],
  providers: [ChatHandler],
})
export class AppModule {}
