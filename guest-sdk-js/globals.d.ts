// The platform's types as globals, as a parser written for the platform uses them (its
// `FetchRequest` and `VoipWebhookParseResult` need no import there). Add this file to a
// tsconfig's `include`, or `/// <reference path=".../@telehook/parser/globals.d.ts" />`.
import type * as sdk from './index.js';

declare global {
  type FetchRequest = sdk.FetchRequest;
  type VoipWebhookParseResult = sdk.VoipWebhookParseResult;
  type VoipWebhookRequest = sdk.VoipWebhookRequest;
  type VoipCallRecord = sdk.VoipCallRecord;
}
