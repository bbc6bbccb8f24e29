import { Module } from '@nestjs/common';
import { env, RiversideModule } from 'nestjs-riverside';
import { EchoHandler } from './echo.handler.js';

@Module({
  imports: [RiversideModule.forRoot({ port: env('PORT', 3000) })],
  providers: [EchoHandler],
})
export class AppModule {}
