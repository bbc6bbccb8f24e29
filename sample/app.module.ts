import { Module } from '@nestjs/common';
import { RiversideModule } from 'nestjs-riverside';
import { ChatController } from './chat.controller.js';
import { ChatHandler } from './chat.handler.js';
import { chatTransport } from './transport.js';

@Module({
  imports: [
    RiversideModule.forRoot({
      // The page, the HTTP API and the WebSocket share the app's port.
      port: 'http',
      invalidMessage: 'close',
      transmissionLimit: { capacity: 20, duration: 1000 },
      // A person follows a handful of channels; past this, join() throws and the handler says so.
      maxChannelsPerSession: 10,
      transport: chatTransport(),
    }),
  ],
  controllers: [ChatController],
  providers: [ChatHandler],
})
export class AppModule {}
