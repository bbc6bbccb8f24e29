import { Body, Controller, Get, Header, HttpCode, Param, Post } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { DeliveryService } from 'nestjs-riverside';
import type { KickInfo } from './chat.handler.js';

// One static page and its icon, read once at startup: no build step, no static-file middleware.
const PAGE = readFileSync(new URL('./public/index.html', import.meta.url), 'utf8');
const ICON = readFileSync(new URL('./public/favicon.svg', import.meta.url), 'utf8');

/**
 * Serves the page, and shows delivery into the chat from plain HTTP: any controller or service
 * can inject DeliveryService and reach channels, users or sessions.
 */
@Controller()
export class ChatController {
  constructor(private readonly delivery: DeliveryService) {}

  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  page() {
    return PAGE;
  }

  /** Browsers ask for /favicon.ico whatever the page says; an SVG answers both names. */
  @Get(['favicon.ico', 'favicon.svg'])
  @Header('Content-Type', 'image/svg+xml')
  @Header('Cache-Control', 'public, max-age=86400')
  icon() {
    return ICON;
  }

  /** `curl -X POST localhost:3000/api/channels/lobby/messages -H 'content-type: application/json' -d '{"text":"hi"}'` */
  @Post('api/channels/:channel/messages')
  @HttpCode(202)
  announce(@Param('channel') channel: string, @Body() body: { text?: unknown }) {
    const message = { from: 'server', channel, say: String(body?.text ?? ''), at: Date.now() };
    const delivered = this.delivery.deliver({ channel }, message);
    return { delivered };
  }

  /** Every node's members of the channel (cluster-wide presence). */
  @Get('api/channels/:channel/members')
  async members(@Param('channel') channel: string) {
    const { members } = await this.delivery.members(channel);
    return members.map(({ userId, sessionId }) => ({ userId, sessionId }));
  }

  /** Every session of the user gets `{ kicked }` and is closed with 4001 (through @OnInfo). */
  @Post('api/users/:user/kick')
  @HttpCode(202)
  kick(@Param('user') user: string) {
    const info: KickInfo = { kick: 'by an administrator' };
    return { sessions: this.delivery.info({ user }, info) };
  }
}
