import { SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import nodemailer, { type Transporter } from 'nodemailer';
import type { Mailer, MailMessage } from '../domain/notifications.ts';

/** Mail through nodemailer: an SMTP server (the local stack's) or Amazon SES (AWS). */
export class NodemailerMailer implements Mailer {
  readonly #transport: Transporter;

  constructor(
    options: { smtpUrl: string } | { ses: { region: string } },
    private readonly from: string,
  ) {
    this.#transport =
      'smtpUrl' in options
        ? nodemailer.createTransport(options.smtpUrl)
        : nodemailer.createTransport({
            SES: { sesClient: new SESv2Client({ region: options.ses.region }), SendEmailCommand },
          });
  }

  async send(message: MailMessage): Promise<void> {
    await this.#transport.sendMail({ from: this.from, ...message });
  }
}
